#include "gateway/config/yaml_identity.h"

namespace gw::config {

namespace {

// Scalars carry their length, so that no two structures encode alike ("a: bc" and "ab: c").
void append(std::string& out, const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar: {
      const std::string& text = node.Scalar();
      out += std::to_string(text.size());
      out += ':';
      out += text;
      return;
    }
    case YAML::NodeType::Sequence:
      out += '[';
      for (const YAML::Node& item : node) append(out, item);
      out += ']';
      return;
    case YAML::NodeType::Map:
      out += '{';
      for (const auto& entry : node) {
        append(out, entry.first);
        append(out, entry.second);
      }
      out += '}';
      return;
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      out += '~';
      return;
  }
}

}  // namespace

std::string identityOf(const YAML::Node& node) {
  std::string identity;
  append(identity, node);
  return identity;
}

}  // namespace gw::config
