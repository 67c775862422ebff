#pragma once
// The plugin seam. A plugin type is a Factory (listed once in plugins/builtin.cpp) that parses its
// YAML settings at load into an immutable RouteConfig, may keep per-worker state, and creates a
// small per-request Plugin (which may offer itself for the worker's next request, see
// Plugin::recycle()). Every hook passes through by default; control flow is the returned Status.
// Plugins run in the order of the route's `plugins:` list (the global list first), in every
// phase, so the YAML reads top to bottom as what happens (as in Kong, unlike Envoy's reversed
// encoder chain).

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/config/plugin_catalogue.h"
#include "gateway/core/error.h"
#include "gateway/observability/metrics.h"
#include "gateway/plugin/dispatcher.h"

namespace YAML {
class Node;
}

namespace gw::plugin {

// What a hook returns; the chain stops the phase at the first one that is not Continue.
//  - request headers, and the whole body a plugin buffered: Stop waits (the plugin calls
//    ctx.resume() later, on the same worker; the phase goes on with the next plugin); Respond
//    answers (ctx.reply/replyWith/fail first) instead of the upstream.
//  - a piece of a streamed request body: Respond refuses the body with the plugin's answer.
//  - response headers: Respond replaces the response with the plugin's answer (ctx.replyWith),
//    and the phase starts over on it, once; the upstream's body is read and dropped.
//  - Stop in a streamed body piece or a response phase, and Respond on a response body piece,
//    cannot be honoured (the bytes are on their way, as in OpenResty's header and body filters):
//    the gateway logs the plugin's bug and goes on with the next plugin.
enum class Status : uint8_t {
  Continue,  // next plugin in this phase
  Stop,      // wait for ctx.resume()
  Respond,   // answered: ctx.reply(), ctx.replyWith() or ctx.fail() was called
};

// A header list a plugin may read and change. Names compare case-insensitively.
class HeaderMap {
 public:
  virtual ~HeaderMap() = default;
  virtual std::optional<std::string_view> get(std::string_view name) const = 0;
  // Replaces every field of that name with one field.
  virtual void set(std::string_view name, std::string_view value) = 0;
  virtual void add(std::string_view name, std::string_view value) = 0;
  virtual void remove(std::string_view name) = 0;
  // Visits every field in order; return false from fn to stop.
  template <typename Fn>
  void forEach(Fn&& fn) const {
    for (std::size_t i = 0; i < size(); ++i) {
      auto [name, value] = at(i);
      if (!fn(name, value)) return;
    }
  }
  virtual std::size_t size() const = 0;
  virtual std::pair<std::string_view, std::string_view> at(std::size_t i) const = 0;
};

struct RequestInfo {
  std::string_view method;
  std::string_view path;    // normalised, as routed (before strip_prefix)
  std::string_view query;   // without '?'
  std::string_view host;    // lower-case, no port ("" for HTTP/1.0 without Host)
  std::string_view clientIp;
  std::string_view routeName;
  // The Host value the backend receives, byte for byte as the client sent it (port, case and a
  // trailing dot kept); with preserve_host: false it goes as X-Forwarded-Host. "" if none.
  std::string_view forwardedHost;
  bool hasBody = false;  // the request has a body (Content-Length > 0 or chunked)
};

// An upstream answer that no client waited for (Context::fetchInBackground).
struct BackgroundResponse {
  int status = 0;  // 0: none (unreachable, timed out, invalid, body over the limit, shut down)
  std::vector<std::pair<std::string, std::string>> fields;  // hop-by-hop fields removed
  std::string body;
};

struct BackgroundRequest {
  // The request's header fields (Host, forwarding fields and framing are the engine's, as for
  // any forwarded request). Read during fetchInBackground() only.
  std::span<const std::pair<std::string_view, std::string_view>> fields;
  std::size_t maxBodyBytes = 0;  // a longer body ends the fetch with no response
  int64_t timeoutMs = 0;         // the whole fetch, from connect to the last body byte
  // Runs once when the fetch ends, on the exchange's worker; when the worker shuts down first,
  // with no response, from the thread tearing it down. It must not touch the exchange, which
  // is long gone by then.
  std::function<void(BackgroundResponse&)> done;
};

// What plugins record of an exchange for the access log: one value per log field a plugin type
// declared (Factory::logFields()), by slot; empty is logged as null. Values are static strings.
class ExchangeNotes {
 public:
  // All plugin types' log fields together (the Registry refuses more).
  static constexpr std::size_t kMaxFields = 8;
  std::string_view& operator[](std::size_t slot) { return values_[slot]; }
  std::string_view operator[](std::size_t slot) const { return values_[slot]; }
  std::span<const std::string_view> values() const { return values_; }

 private:
  std::array<std::string_view, kMaxFields> values_{};
};

// Where a plugin type's counters and log fields begin in the blocks every route (counters) and
// every exchange (notes) has for all plugin types. The Registry places each type; a factory in
// no registry (as unit tests use one) starts both at 0.
struct Slots {
  uint32_t counters = 0;
  uint32_t logFields = 0;
};

class Context {
 public:
  virtual ~Context() = default;
  virtual const RequestInfo& request() const = 0;
  virtual HeaderMap& requestHeaders() = 0;
  // Valid in response phases (and after reply()).
  virtual HeaderMap& responseHeaders() = 0;
  virtual int responseStatus() const = 0;
  virtual std::string_view requestId() const = 0;
  virtual void setRequestId(std::string id) = 0;
  // Answers locally with this status and body; return Status::Respond after calling it.
  virtual void reply(int status, std::string body, std::string_view contentType) = 0;
  // Answers locally with the error's status and the JSON error body (proxy/local_reply).
  virtual void fail(core::Error error) = 0;
  using Field = std::pair<std::string_view, std::string_view>;
  // Answers locally with a response of the plugin's own making (e.g. one from a cache): its
  // fields as given, except that the core owns framing (Content-Length from the body, none for
  // 1xx/204/304; given framing and hop-by-hop fields are dropped). Return Status::Respond after.
  virtual void replyWith(int status, std::span<const Field> fields, std::string body) = 0;
  // Sends a GET for this exchange's target upstream once more, with no client waiting for it:
  // the exchange goes on by itself (e.g. answered from a cache while its copy is refreshed).
  // False, and `done` never runs, when it cannot start (the worker's limit on such fetches,
  // no usable backend).
  virtual bool fetchInBackground(BackgroundRequest request) = 0;
  // Ask the core to buffer the whole request body (up to `limit` bytes, else 413) and hand it to
  // onRequestBody in one piece with end = true.
  virtual void bufferRequestBody(std::size_t limit) = 0;
  // After returning Stop: continue the phase with the next plugin. Same worker thread only. If
  // the plugin answered (reply/replyWith/fail) before resuming, that answer is sent instead.
  virtual void resume() = 0;
  // The exchange's worker, as far as a plugin may use it: post, timers, clock.
  virtual Dispatcher& dispatcher() = 0;
  // dispatcher().nowMs(), in one call: the clock, cached per event-loop turn.
  virtual int64_t nowMs() const = 0;
  virtual ExchangeNotes& notes() = 0;
  // This exchange's route's plugin counters in this worker's metric shard: plain integers of
  // this thread, summed over workers at scrape. Index: Slots::counters + the counter's number.
  virtual std::span<uint64_t> counters() = 0;
  void count(uint32_t slot, uint64_t n = 1) { counters()[slot] += n; }
};

// Parsed and validated once at load; immutable; shared by all workers.
struct RouteConfig : config::PluginSettings {};

// A route of the live configuration and the settings of one plugin type bound to it (the
// global list's included), for that type's admin endpoints.
struct BoundRoute {
  std::string_view name;
  std::vector<const RouteConfig*> settings;
};

// An endpoint a plugin type offers on the admin listener (the cache's DELETE /cache).
struct AdminEndpoint {
  std::string_view method;  // the one method it answers; any other gets 405 with Allow
  std::string_view path;    // matched exactly
  // Runs on the admin thread with the query (without '?') and every route of the live
  // configuration, so it may touch only thread-safe shared state. Returns the JSON body of a
  // 200, or an Error whose code gives the status and the wire code of the JSON error.
  core::Result<std::string> (*handle)(std::string_view query, std::span<const BoundRoute> routes);
};
// Per (route binding x worker); touched by that worker's thread only.
struct WorkerState {
  virtual ~WorkerState() = default;
};

using BodyView = std::string_view;

class Plugin {
 public:
  virtual ~Plugin() = default;
  // Request head received and routed; the upstream has not been contacted.
  virtual Status onRequestHeaders(Context&) { return Status::Continue; }
  // A piece of the request body (the whole body if bufferRequestBody() was asked); end = last.
  virtual Status onRequestBody(Context&, BodyView, bool /*end*/) { return Status::Continue; }
  // Response head received (from the upstream or a local reply); headers may be changed. A
  // plugin may replace the whole response by calling replyWith() and returning Respond: the
  // phase then starts over on the replacement, once, and the upstream's body is dropped.
  virtual Status onResponseHeaders(Context&) { return Status::Continue; }
  // A piece of the response body; end = last.
  virtual Status onResponseBody(Context&, BodyView, bool /*end*/) { return Status::Continue; }
  // The exchange is over: log / metrics enrichment.
  virtual void onComplete(const Context&) noexcept {}
  // The exchange is being torn down (also on errors): cancel async work before we are freed.
  virtual void onDestroy() noexcept {}
  // After onDestroy: ready this instance for the next exchange of the same binding on the same
  // worker (forget the per-request state) and return true, so that no fresh instance is created
  // per request; false (the default): it is destroyed and create() makes the next one. A recycled
  // instance may be destroyed after its worker state: its destructor must not touch it.
  virtual bool recycle() noexcept { return false; }
};

// One error found while parsing a plugin's settings, located like every config error.
using ConfigError = config::ConfigError;

// A plugin type, as the loader finds it in the Registry (name, kind, allowsRepeats: see
// config::PluginType).
class Factory : public config::PluginType {
 public:
  // Load time only (the loader's thread); YAML stops here. Returns null after adding at least
  // one error. `settings` is the value under the plugin's name (null node: no settings).
  virtual std::shared_ptr<const RouteConfig> parse(const YAML::Node& settings,
                                                   std::vector<ConfigError>& errors) const = 0;
  // Instead of parse, for a type whose settings depend on other sections (the `redis:` block's
  // key prefix and secret); the default ignores them.
  virtual std::shared_ptr<const RouteConfig> parseInContext(
      const YAML::Node& settings, const config::SettingsContext& /*context*/,
      std::vector<ConfigError>& errors) const {
    return parse(settings, errors);
  }
  std::shared_ptr<const config::PluginSettings> parseSettings(
      const YAML::Node& settings, const config::SettingsContext& context,
      std::vector<ConfigError>& errors) const final {
    return parseInContext(settings, context, errors);
  }
  // Once per worker and binding, on the thread that builds the worker.
  virtual std::unique_ptr<WorkerState> makeWorkerState(const RouteConfig&, Dispatcher&) const {
    return nullptr;
  }
  virtual std::unique_ptr<Plugin> create(const RouteConfig&, WorkerState*) const = 0;
  // The counter families this type adds to /metrics, every route having each series from the
  // start. The type's counters are numbered from 0 in declaration order, one per series (a
  // labelled family has one per value); Context::count(slots().counters + number).
  virtual std::span<const observability::CounterFamily> counters() const { return {}; }
  // The access-log fields this type may set (names as in access_log.fields), numbered from 0;
  // Context::notes()[slots().logFields + number] = value.
  virtual std::span<const std::string_view> logFields() const { return {}; }
  // The admin endpoints this type offers.
  virtual std::span<const AdminEndpoint> adminEndpoints() const { return {}; }
  Slots slots() const { return slots_; }

 private:
  friend class Registry;
  Slots slots_;
};

// A binding's factory and settings. Bindings are made by the loader from the Registry, whose
// types are Factories and whose settings are RouteConfigs.
inline const Factory& factoryOf(const config::PluginBinding& binding) {
  return static_cast<const Factory&>(*binding.type);
}
inline const RouteConfig& settingsOf(const config::PluginBinding& binding) {
  return static_cast<const RouteConfig&>(*binding.settings);
}

}  // namespace gw::plugin
