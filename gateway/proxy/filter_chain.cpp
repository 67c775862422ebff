#include "gateway/proxy/filter_chain.h"

namespace gw::proxy {

void FilterChain::start(const std::vector<config::PluginBinding>& bindings,
                        std::span<plugin::WorkerState* const> states) {
  // A previous exchange that never finished leaves nothing fit for another.
  if (!finished_) destroyAll();
  bindings_ = &bindings;
  next_ = 0;
  interrupted_ = false;
  finished_ = false;
  instances_.resize(bindings.size());
  for (std::size_t i = 0; i < bindings.size(); ++i) {
    const config::PluginBinding& binding = bindings[i];
    plugin::WorkerState* const state = i < states.size() ? states[i] : nullptr;
    Instance& instance = instances_[i];
    if (instance.plugin && instance.settings == binding.settings && instance.state == state) {
      continue;
    }
    instance.plugin = plugin::factoryOf(binding).create(plugin::settingsOf(binding), state);
    instance.settings = binding.settings;
    instance.state = state;
  }
}

FilterChain::~FilterChain() {
  if (!finished_) destroyAll();
}

void FilterChain::destroyAll() noexcept {
  for (Instance& instance : instances_) {
    if (instance.plugin) instance.plugin->onDestroy();
  }
  instances_.clear();
}

plugin::Status FilterChain::run(Phase phase, plugin::Context& ctx, std::string_view body,
                                bool end) {
  if (!interrupted_ || phase != phase_) next_ = 0;
  phase_ = phase;
  interrupted_ = false;
  while (next_ < instances_.size()) {
    plugin::Plugin& plugin = *instances_[next_++].plugin;
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
  for (Instance& instance : instances_) instance.plugin->onComplete(ctx);
  for (Instance& instance : instances_) instance.plugin->onDestroy();
  for (Instance& instance : instances_) {
    if (!instance.plugin->recycle()) instance.plugin.reset();
  }
}

}  // namespace gw::proxy
