#include "gateway/proxy/filter_chain.h"

namespace gw::proxy {

void FilterChain::start(const std::vector<config::PluginBinding>& bindings,
                        std::span<plugin::WorkerState* const> states) {
  plugins_.clear();
  bindings_ = &bindings;
  next_ = 0;
  interrupted_ = false;
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

plugin::Status FilterChain::run(Phase phase, plugin::Context& ctx, std::string_view body,
                                bool end) {
  if (!interrupted_ || phase != phase_) next_ = 0;
  phase_ = phase;
  interrupted_ = false;
  while (next_ < plugins_.size()) {
    plugin::Plugin& plugin = *plugins_[next_++];
    plugin::Status status = plugin::Status::Continue;
    switch (phase) {
      case Phase::RequestHeaders: status = plugin.onRequestHeaders(ctx); break;
      case Phase::RequestBody: status = plugin.onRequestBody(ctx, body, end); break;
      case Phase::ResponseHeaders: status = plugin.onResponseHeaders(ctx); break;
      case Phase::ResponseBody: status = plugin.onResponseBody(ctx, body, end); break;
    }
    if (status != plugin::Status::Continue) {
      interrupted_ = status == plugin::Status::Stop;
      return status;
    }
  }
  return plugin::Status::Continue;
}

std::string_view FilterChain::stoppedBy() const {
  return bindings_ && next_ > 0 ? std::string_view((*bindings_)[next_ - 1].name) : "";
}

void FilterChain::finish(const plugin::Context& ctx) noexcept {
  if (finished_) return;
  finished_ = true;
  for (auto& plugin : plugins_) plugin->onComplete(ctx);
  for (auto& plugin : plugins_) plugin->onDestroy();
}

}  // namespace gw::proxy
