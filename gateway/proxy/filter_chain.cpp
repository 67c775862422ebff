#include "gateway/proxy/filter_chain.h"

namespace gw::proxy {

void FilterChain::start(const std::vector<config::PluginBinding>& bindings,
                        std::span<plugin::WorkerState* const> states) {
  plugins_.clear();
  next_ = 0;
  finished_ = false;
  for (std::size_t i = 0; i < bindings.size(); ++i) {
    const auto& binding = bindings[i];
    plugins_.push_back(plugin::factoryOf(binding).create(plugin::settingsOf(binding), i < states.size() ? states[i] : nullptr));
  }
}

FilterChain::~FilterChain() {
  if (finished_) return;
  for (auto& plugin : plugins_) plugin->onDestroy();
}

plugin::Status FilterChain::runRequestHeaders(plugin::Context& ctx) {
  while (next_ < plugins_.size()) {
    plugin::Status status = plugins_[next_++]->onRequestHeaders(ctx);
    if (status != plugin::Status::Continue) return status;
  }
  return plugin::Status::Continue;
}

plugin::Status FilterChain::runRequestBody(plugin::Context& ctx, std::string_view body, bool end) {
  for (auto& plugin : plugins_) {
    plugin::Status status = plugin->onRequestBody(ctx, body, end);
    if (status == plugin::Status::Respond) return status;
  }
  return plugin::Status::Continue;
}

void FilterChain::runResponseHeaders(plugin::Context& ctx) {
  for (auto& plugin : plugins_) plugin->onResponseHeaders(ctx);
}

void FilterChain::runResponseBody(plugin::Context& ctx, std::string_view body, bool end) {
  for (auto& plugin : plugins_) plugin->onResponseBody(ctx, body, end);
}

void FilterChain::finish(const plugin::Context& ctx) noexcept {
  if (finished_) return;
  finished_ = true;
  for (auto& plugin : plugins_) plugin->onComplete(ctx);
  for (auto& plugin : plugins_) plugin->onDestroy();
}

}  // namespace gw::proxy
