// A real Prometheus server scrapes the real gatewayd's admin /metrics over loopback, and PromQL
// over its HTTP API sees exactly the traffic the test sent: the exposition works end to end, not
// only under promtool's static check.
#include <doctest.h>

#include <rapidjson/document.h>

#include <filesystem>
#include <optional>
#include <string>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

constexpr const char* kPrometheusPath = "/usr/bin/prometheus";

// The single value of an instant-vector query answer, or nullopt when the answer has no sample
// (yet) or is not a successful vector result.
std::optional<double> singleValue(const std::string& body) {
  rapidjson::Document doc;
  if (doc.Parse(body.c_str()).HasParseError() || !doc.IsObject()) return std::nullopt;
  if (!doc.HasMember("status") || std::string_view(doc["status"].GetString()) != "success")
    return std::nullopt;
  const auto& result = doc["data"]["result"];
  if (!result.IsArray() || result.Size() != 1) return std::nullopt;
  const auto& value = result[0]["value"];
  if (!value.IsArray() || value.Size() != 2 || !value[1].IsString()) return std::nullopt;
  return std::stod(value[1].GetString());
}

class PrometheusServer {
 public:
  explicit PrometheusServer(uint16_t target_port)
      : port_(freePort()), log_path_(dir_.path() + "/prometheus.log") {
    const std::string config = dir_.write("prometheus.yml", subst(R"yaml(global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: gatewayd
    metrics_path: /metrics
    static_configs:
      - targets: ['127.0.0.1:${TARGET}']
)yaml", {{"TARGET", std::to_string(target_port)}}));
    process_.emplace(std::vector<std::string>{kPrometheusPath, "--config.file=" + config,
                                              "--storage.tsdb.path=" + dir_.path() + "/data",
                                              "--web.listen-address=127.0.0.1:" +
                                                  std::to_string(port_),
                                              "--log.level=warn"},
                     log_path_);
  }

  std::string log() const { return readFile(log_path_); }
  // The harness Client fails the test on a refused connect, so wait for the listener first.
  bool listening() const { return waitPortOpen(port_, 30000ms); }

  // The body of GET /api/v1/query for promql, or "" when there was no complete answer.
  std::string query(std::string_view promql) const {
    Client c(port_);
    Response r = c.roundTrip(request("GET", "/api/v1/query?query=" + percentEncode(promql), {}, {},
                                     "127.0.0.1:" + std::to_string(port_)));
    return r.complete ? r.body : std::string{};
  }

 private:
  TempDir dir_;
  uint16_t port_;
  std::string log_path_;
  std::optional<Process> process_;
};

}  // namespace

TEST_CASE("prometheus: a real Prometheus scrapes /metrics and PromQL sees the exact traffic") {
  if (!std::filesystem::exists(kPrometheusPath)) {
    FAIL("/usr/bin/prometheus is missing: scripts/setup.sh installs the prometheus package "
         "(the suite requires it)");
  }
  Backend b;
  Gateway gw(apiConfig(b));
  constexpr int kRequests = 7;
  Client c(gw.port());
  for (int i = 0; i < kRequests; ++i) {
    Response r = c.roundTrip(get("/api/items"));
    REQUIRE_MESSAGE(r.complete, r.error);
    REQUIRE(r.status == 200);
  }

  PrometheusServer prom(gw.adminPort());
  REQUIRE_MESSAGE(prom.listening(), "prometheus never listened; its log:\n" << prom.log());
  std::string lastAnswer;
  auto waitValue = [&](std::string_view promql, double expected) {
    return waitFor(
        [&] {
          lastAnswer = prom.query(promql);
          return singleValue(lastAnswer) == expected;
        },
        30000ms, 500ms);
  };

  const bool counted = waitValue(R"q(sum(gatewayd_http_requests_total{route="api",code="200"}))q",
                                 kRequests);
  CHECK_MESSAGE(counted, "last answer: " << lastAnswer << "\nprometheus log:\n" << prom.log());
  const bool up = waitValue(R"q(up{job="gatewayd"})q", 1);
  CHECK_MESSAGE(up, "last answer: " << lastAnswer << "\nprometheus log:\n" << prom.log());
}
