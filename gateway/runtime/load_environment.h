#pragma once
// What gatewayd's loader asks of the floors above configuration: the plugin catalogue (the
// built-in Registry unless a test brings its own) and the checks of access-log fields
// (observability's and the plugin types') and OTLP endpoints.

#include "gateway/config/loader.h"
#include "gateway/plugin/registry.h"

namespace gw::runtime {

// `plugins` must outlive the environment.
config::LoadEnvironment loadEnvironment(
    const plugin::Registry& plugins = plugin::Registry::builtin());

}  // namespace gw::runtime
