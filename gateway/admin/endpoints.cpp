#include "gateway/admin/endpoints.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "gateway/core/json.h"

namespace gw::admin {

namespace {

int64_t wallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Response jsonResponse(int status, std::string body) {
  return {status, "application/json", std::move(body), {}};
}

// Appends `text` to the items of a JSON array, as a string.
void appendJsonString(std::string& items, std::string_view text) {
  if (!items.empty()) items += ',';
  items += '"';
  core::appendJsonEscaped(items, text);
  items += '"';
}

// {"result":"applied","generation":N,"at_unix_ms":T,"errors":[...],"needs_restart":[...]}, the
// lists only when not empty.
std::string reloadJson(const ReloadOutcome& outcome) {
  std::string body = "{\"result\":\"";
  body += outcome.applied ? "applied" : "refused";
  body += "\",\"generation\":" + std::to_string(outcome.generation);
  body += ",\"at_unix_ms\":" + std::to_string(outcome.atMs);
  const auto list = [&](std::string_view key, const std::vector<std::string>& items) {
    if (items.empty()) return;
    std::string joined;
    for (const std::string& item : items) appendJsonString(joined, item);
    body.append(",\"").append(key).append("\":[").append(joined).append("]");
  };
  list("errors", outcome.errors);
  list("needs_restart", outcome.needsRestart);
  body += "}";
  return body;
}

// 200 when applied; a refused configuration is the caller's to fix: 400 with the usual error
// object (its message the first problem) and every problem listed; 503 while draining.
Response reloadAnswer(const ReloadOutcome& outcome) {
  if (outcome.applied) return jsonResponse(200, reloadJson(outcome) + "\n");
  const std::string_view code = outcome.shuttingDown ? "SHUTTING_DOWN" : "CONFIG_INVALID";
  std::string body = "{\"error\":{\"code\":\"";
  body.append(code).append("\",\"message\":\"");
  core::appendJsonEscaped(
      body, outcome.errors.empty() ? "configuration refused" : std::string_view(outcome.errors[0]));
  body += "\"},\"reload\":" + reloadJson(outcome) + "}\n";
  return jsonResponse(outcome.shuttingDown ? 503 : 400, std::move(body));
}

}  // namespace

void Endpoints::handle(const Request& request, std::function<void(Response)> done) {
  auto methodNotAllowed = [&](std::string allow) {
    Response response =
        errorResponse(405, "METHOD_NOT_ALLOWED", "this admin endpoint answers " + allow);
    response.allow = std::move(allow);
    done(std::move(response));
  };
  std::string known = "admin endpoints: /metrics /health /ready /status, POST /reload";
  for (const auto& factory : plugins_.factories()) {
    for (const plugin::AdminEndpoint& endpoint : factory->adminEndpoints()) {
      if (request.path == endpoint.path) {
        if (request.method != endpoint.method)
          return methodNotAllowed(std::string(endpoint.method));
        return done(pluginEndpoint(*factory, endpoint, request.query));
      }
      known.append(", ").append(endpoint.method).append(" ").append(endpoint.path);
    }
  }
  if (request.path == "/reload") {
    if (request.method != "POST") return methodNotAllowed("POST");
    return process_.reload(
        [done = std::move(done)](const ReloadOutcome& outcome) { done(reloadAnswer(outcome)); });
  }
  if (request.method != "GET" && request.method != "HEAD") return methodNotAllowed("GET, HEAD");
  if (request.path == "/health") return done(jsonResponse(200, "{\"status\":\"alive\"}\n"));
  if (request.path == "/ready") return done(readiness());
  if (request.path == "/status") return done(status());
  if (request.path == "/metrics") {
    return process_.collectMetrics([done = std::move(done)](std::string text) {
      done({200, "text/plain; version=0.0.4; charset=utf-8", std::move(text), {}});
    });
  }
  done(errorResponse(404, "NOT_FOUND", known));
}

Response Endpoints::pluginEndpoint(const plugin::Factory& factory,
                                   const plugin::AdminEndpoint& endpoint,
                                   std::string_view query) const {
  std::vector<plugin::BoundRoute> routes;
  for (const config::RouteConfig& route : config_->routes) {
    plugin::BoundRoute& bound = routes.emplace_back();
    bound.name = route.name;
    // The route's list begins with the global list's bindings.
    for (const config::PluginBinding& binding : route.plugins) {
      if (binding.type == &factory && binding.settings) {
        bound.settings.push_back(&plugin::settingsOf(binding));
      }
    }
  }
  auto answer = endpoint.handle(query, routes);
  if (!answer) return errorResponse(answer.error().code, answer.error().message);
  return jsonResponse(200, std::move(*answer));
}

Response Endpoints::readiness() const {
  std::string reasons;
  auto reason = [&](std::string_view text) { appendJsonString(reasons, text); };
  if (process_.state() == ProcessState::Starting) reason("starting: workers are not running yet");
  if (process_.state() == ProcessState::Draining) reason("draining: shutting down");
  // An upstream a route needs with no backend left is degraded, and listed; it makes the gateway
  // not ready only when readiness.required_upstreams names it.
  const std::vector<std::size_t>& required = config_->readiness.required_upstreams;
  const int64_t now = wallClockMs();
  std::string degraded;
  for (std::size_t u = 0; u < health_->upstreamCount(); ++u) {
    const bool isRequired = std::find(required.begin(), required.end(), u) != required.end();
    const bool routed =
        std::any_of(config_->routes.begin(), config_->routes.end(),
                    [&](const config::RouteConfig& route) { return route.upstream == u; });
    if ((!routed && !isRequired) || health_->anyUsable(u, now)) continue;
    const std::string& name = health_->spec(u).name;
    appendJsonString(degraded, name);
    if (isRequired) reason("upstream '" + name + "' has no healthy backend");
  }
  const redis::StateBoard* redisStates = process_.redisStates();
  if (config_->redis && redisStates && config_->readiness.require_redis) {
    const std::size_t open = redisStates->count()[static_cast<std::size_t>(redis::State::Open)];
    if (open > 0) {
      reason("redis is unreachable from " + std::to_string(open) + " of " +
             std::to_string(redisStates->workers()) + " workers");
    }
  }
  const std::string listed =
      (degraded.empty() ? "" : ",\"degraded_upstreams\":[" + degraded + "]") + redisJson();
  if (reasons.empty()) return jsonResponse(200, "{\"status\":\"ready\"" + listed + "}\n");
  return jsonResponse(503,
                      "{\"status\":\"not_ready\",\"reasons\":[" + reasons + "]" + listed + "}\n");
}

Response Endpoints::status() const {
  const config::Config& config = *config_;
  static constexpr const char* kStateNames[] = {"starting", "serving", "draining"};
  std::string body = "{\"version\":\"" GATEWAYD_VERSION "\",\"state\":\"";
  body += kStateNames[static_cast<int>(process_.state())];
  body +=
      "\",\"uptime_seconds\":" + std::to_string((wallClockMs() - process_.startedAtMs()) / 1000);
  body += ",\"config\":{\"source\":\"";
  core::appendJsonEscaped(body, config.source);
  body += "\",\"generation\":" + std::to_string(process_.configGeneration()) + "}";
  body += ",\"workers\":" + std::to_string(process_.workerCount());
  body += ",\"last_reload\":";
  body += process_.lastReload() ? reloadJson(*process_.lastReload()) : "null";
  body += ",\"upstreams\":[";
  const int64_t now = wallClockMs();
  bool firstUpstream = true;
  for (const upstream::UpstreamStatus& u : health_->snapshot(now)) {
    body += std::exchange(firstUpstream, false) ? "{\"name\":\"" : ",{\"name\":\"";
    core::appendJsonEscaped(body, u.name);
    body += "\",\"healthy\":";
    body += u.anyUsable ? "true" : "false";
    body += ",\"active_check\":";
    body += u.activeCheck ? "true" : "false";
    body += ",\"backends\":[";
    bool firstBackend = true;
    for (const upstream::BackendStatus& b : u.backends) {
      body += std::exchange(firstBackend, false) ? "{\"address\":\"" : ",{\"address\":\"";
      core::appendJsonEscaped(body, b.address);
      body += "\",\"state\":\"";
      body += upstream::stateName(b.state);
      body += "\",\"reason\":\"";
      core::appendJsonEscaped(body, b.reason);
      body += "\",\"consecutive_failures\":" + std::to_string(b.consecutiveFailures);
      body += ",\"ejections\":" + std::to_string(b.ejections);
      body += ",\"ejections_refused\":" + std::to_string(b.ejectionsRefused);
      body += ",\"last_probe_status\":" + std::to_string(b.lastProbeStatus);
      body += ",\"last_probe_error\":\"";
      core::appendJsonEscaped(body, b.lastProbeError);
      body += "\"}";
    }
    body += "]}";
  }
  body += "]" + redisJson() + "}\n";
  return jsonResponse(200, std::move(body));
}

std::string Endpoints::redisJson() const {
  const redis::StateBoard* states = process_.redisStates();
  if (!config_->redis || !states) return "";
  std::string json = ",\"redis\":{\"address\":\"";
  core::appendJsonEscaped(json, config_->redis->address);
  json += "\",\"workers\":{";
  const auto counts = states->count();
  for (std::size_t i = 0; i < counts.size(); ++i) {
    json += i ? ",\"" : "\"";
    json += redis::stateName(static_cast<redis::State>(i));
    json += "\":" + std::to_string(counts[i]);
  }
  return json + "}}";
}

}  // namespace gw::admin
