#pragma once
// The plugin instances of one exchange, created from the route's bindings, and the order the
// phases run them in: the YAML order, in every phase. A request phase stops at the first plugin
// that answers (Respond) or waits (Stop, resumed later from the next plugin); response phases run
// every plugin, because a gateway-made answer deserves the same headers as a proxied one.

#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "gateway/config/model.h"
#include "gateway/plugin/plugin.h"

namespace gw::proxy {

class FilterChain {
 public:
  FilterChain() = default;
  ~FilterChain();
  // Creates this exchange's plugin instances (after finish() of the previous exchange, if any).
  void start(const std::vector<config::PluginBinding>& bindings,
             std::span<plugin::WorkerState* const> states);
  FilterChain(const FilterChain&) = delete;
  FilterChain& operator=(const FilterChain&) = delete;

  bool empty() const { return plugins_.empty(); }
  // From the plugin after the one that returned Stop (or from the first).
  plugin::Status runRequestHeaders(plugin::Context& ctx);
  plugin::Status runRequestBody(plugin::Context& ctx, std::string_view body, bool end);
  void runResponseHeaders(plugin::Context& ctx);
  void runResponseBody(plugin::Context& ctx, std::string_view body, bool end);
  // onComplete for every plugin, once; then onDestroy.
  void finish(const plugin::Context& ctx) noexcept;

 private:
  std::vector<std::unique_ptr<plugin::Plugin>> plugins_;
  std::size_t next_ = 0;
  bool finished_ = false;
};

}  // namespace gw::proxy
