#pragma once
// An in-memory plugin::Context for plugin unit tests: a plugin is driven hook by hook and the test
// reads what it did (headers changed, reply or error, buffering asked, resume called). The real
// Context is the proxy's stream; integration tests in test/integration/plugins/ cover that.

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gateway/http/headers.h"
#include "gateway/plugin/plugin.h"
#include "test/support/fake_dispatcher.h"

namespace gw::test {

class TestHeaderMap final : public plugin::HeaderMap {
 public:
  std::vector<std::pair<std::string, std::string>> fields;

  std::optional<std::string_view> get(std::string_view name) const override {
    for (const auto& [n, v] : fields) {
      if (http::iequals(n, name)) return std::string_view(v);
    }
    return std::nullopt;
  }
  void set(std::string_view name, std::string_view value) override {
    remove(name);
    add(name, value);
  }
  void add(std::string_view name, std::string_view value) override {
    fields.emplace_back(std::string(name), std::string(value));
  }
  void remove(std::string_view name) override {
    std::erase_if(fields, [&](const auto& f) { return http::iequals(f.first, name); });
  }
  std::size_t size() const override { return fields.size(); }
  std::pair<std::string_view, std::string_view> at(std::size_t i) const override {
    return {fields[i].first, fields[i].second};
  }
};

class TestContext final : public plugin::Context {
 public:
  plugin::RequestInfo info{"GET", "/", "", "example.test", "192.0.2.1", "route", "example.test"};
  TestHeaderMap requestFields;
  TestHeaderMap responseFields;
  int status = 0;
  std::string id = "test-request-id";
  // What the plugin asked for.
  std::optional<int> repliedStatus;
  std::string repliedBody;
  std::string repliedContentType;
  std::vector<std::pair<std::string, std::string>> repliedFields;  // from replyWith
  std::optional<core::Error> failedWith;
  std::optional<std::size_t> bufferLimit;
  int resumes = 0;
  // Background fetches asked for (the test ends each by calling done), and whether to take them.
  struct BackgroundFetch {
    std::vector<std::pair<std::string, std::string>> fields;
    std::size_t maxBodyBytes = 0;
    int64_t timeoutMs = 0;
    std::function<void(plugin::BackgroundResponse&)> done;
  };
  std::vector<BackgroundFetch> background;
  bool acceptBackground = true;
  // The worker: tests move its clock and fire its timers by hand. Behind a pointer so that a
  // context can be moved while the plugin's timers point at the dispatcher.
  std::unique_ptr<FakeDispatcher> loop = std::make_unique<FakeDispatcher>();

  const plugin::RequestInfo& request() const override { return info; }
  plugin::HeaderMap& requestHeaders() override { return requestFields; }
  plugin::HeaderMap& responseHeaders() override { return responseFields; }
  int responseStatus() const override { return status; }
  std::string_view requestId() const override { return id; }
  void setRequestId(std::string newId) override { id = std::move(newId); }
  void reply(int s, std::string body, std::string_view contentType) override {
    repliedStatus = s;
    repliedBody = std::move(body);
    repliedContentType = contentType;
  }
  void fail(core::Error error) override { failedWith = std::move(error); }
  void replyWith(int s, std::span<const Field> fields, std::string body) override {
    repliedStatus = s;
    repliedFields.assign(fields.begin(), fields.end());
    repliedBody = std::move(body);
  }
  void bufferRequestBody(std::size_t limit) override { bufferLimit = limit; }
  bool fetchInBackground(plugin::BackgroundRequest request) override {
    if (!acceptBackground) return false;
    BackgroundFetch& fetch = background.emplace_back();
    for (const auto& [name, value] : request.fields) fetch.fields.emplace_back(name, value);
    fetch.maxBodyBytes = request.maxBodyBytes;
    fetch.timeoutMs = request.timeoutMs;
    fetch.done = std::move(request.done);
    return true;
  }
  void resume() override { ++resumes; }
  plugin::Dispatcher& dispatcher() override { return *loop; }
  int64_t nowMs() const override { return loop->now; }
  plugin::ExchangeNotes& notes() override { return exchangeNotes; }
  std::span<uint64_t> counters() override { return counted; }
  plugin::ExchangeNotes exchangeNotes;
  // The route's plugin counters, by slot (a plugin under test has slots from 0).
  std::array<uint64_t, 16> counted{};
};

}  // namespace gw::test
