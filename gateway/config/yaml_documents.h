#pragma once
// What the loader needs of a YAML stream: its first document, and whether another follows.
// yaml-cpp 0.7's LoadAll() never returns on a token no document can hold (a lone ',' at the top
// level): its parser reports the same empty document at the same place again and again, and
// LoadAll keeps each one until memory runs out (jbeder/yaml-cpp#1040, fixed upstream after 0.8
// by #1319). So the stream's documents are only counted, a few at most, and a document that
// starts where the previous one did is that token. (Config code only: includes yaml-cpp.)

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>

namespace gw::config {

struct FirstDocument {
  YAML::Node root;                  // null when the stream holds no document
  std::optional<YAML::Mark> next;   // where a second document starts, if one does
  std::optional<YAML::Mark> stuck;  // where the parser stopped making progress, if it did
};

// Throws what yaml-cpp throws on invalid YAML (YAML::Exception and its kinds).
FirstDocument readFirstDocument(const std::string& text);

}  // namespace gw::config
