#include "gateway/config/yaml_documents.h"

#include <yaml-cpp/eventhandler.h>

#include <sstream>
#include <vector>

namespace gw::config {

namespace {

// Where each document starts; the documents' content is not kept.
class DocumentStarts final : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> marks;

  void OnDocumentStart(const YAML::Mark& mark) override { marks.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// Enough to see a second document, and a third starting where the second did.
constexpr int kDocumentsRead = 3;

}  // namespace

FirstDocument readFirstDocument(const std::string& text) {
  FirstDocument document;
  document.root = YAML::Load(text);  // one document: not the loop that never ends
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts starts;
  for (int i = 0; i < kDocumentsRead && parser.HandleNextDocument(starts); ++i) {
  }
  for (std::size_t i = 1; i < starts.marks.size(); ++i) {
    if (starts.marks[i].pos == starts.marks[i - 1].pos) {
      document.stuck = starts.marks[i];
      return document;
    }
  }
  if (starts.marks.size() > 1) document.next = starts.marks[1];
  return document;
}

}  // namespace gw::config
