#include "gateway/proxy/filter_chain.h"

#include <doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "test/support/plugin_context.h"

using namespace gw;
using plugin::Status;
using Phase = proxy::FilterChain::Phase;

namespace {

// Records every hook it sees into a shared journal, and answers with a given status.
struct Journal {
  std::vector<std::string> lines;
};

struct Scripted final : plugin::RouteConfig {
  std::string name;
  Status onHeaders = Status::Continue;
  Status onBody = Status::Continue;
  Status onResponse = Status::Continue;
  Status onResponseBody = Status::Continue;
  bool recyclable = false;
  Journal* journal = nullptr;
  mutable int created = 0;
};

class ScriptedPlugin final : public plugin::Plugin {
 public:
  explicit ScriptedPlugin(const Scripted& s) : s_(s) {}
  Status onRequestHeaders(plugin::Context&) override {
    // Per-request state: a recycled instance must have forgotten the previous exchange's.
    s_.journal->lines.push_back(s_.name + " headers" +
                                (completed_ ? " of a completed exchange" : ""));
    return s_.onHeaders;
  }
  Status onRequestBody(plugin::Context&, plugin::BodyView body, bool end) override {
    s_.journal->lines.push_back(s_.name + " body '" + std::string(body) + "'" + (end ? " end" : ""));
    return s_.onBody;
  }
  Status onResponseHeaders(plugin::Context&) override {
    s_.journal->lines.push_back(s_.name + " response");
    return s_.onResponse;
  }
  Status onResponseBody(plugin::Context&, plugin::BodyView body, bool end) override {
    s_.journal->lines.push_back(s_.name + " response body '" + std::string(body) + "'" +
                                (end ? " end" : ""));
    return s_.onResponseBody;
  }
  void onComplete(const plugin::Context&) noexcept override {
    completed_ = true;
    s_.journal->lines.push_back(s_.name + " complete");
  }
  void onDestroy() noexcept override { s_.journal->lines.push_back(s_.name + " destroy"); }
  bool recycle() noexcept override {
    completed_ = false;
    return s_.recyclable;
  }

 private:
  const Scripted& s_;
  bool completed_ = false;
};

class ScriptedFactory final : public plugin::Factory {
 public:
  std::string_view name() const override { return "scripted"; }
  std::shared_ptr<const plugin::RouteConfig> parse(const YAML::Node&,
                                                   std::vector<plugin::ConfigError>&) const override {
    return nullptr;
  }
  std::unique_ptr<plugin::Plugin> create(const plugin::RouteConfig& config,
                                         plugin::WorkerState*) const override {
    const auto& scripted = static_cast<const Scripted&>(config);
    ++scripted.created;
    return std::make_unique<ScriptedPlugin>(scripted);
  }
};

struct Fixture {
  ScriptedFactory factory;
  Journal journal;
  std::vector<config::PluginBinding> bindings;
  std::vector<std::shared_ptr<Scripted>> scripts;  // what the bindings hold, still editable

  Scripted& add(std::string name) {
    auto s = std::make_shared<Scripted>();
    s->name = std::move(name);
    s->journal = &journal;
    config::PluginBinding binding;
    binding.name = s->name;
    binding.type = &factory;
    binding.settings = s;
    bindings.push_back(binding);
    scripts.push_back(s);
    return *s;
  }
};

}  // namespace

TEST_CASE("filter_chain: request phases stop at the first answer; a wait resumes after it") {
  Fixture f;
  f.add("a");
  f.add("b").onHeaders = Status::Stop;
  f.add("c");
  test::TestContext ctx;
  proxy::FilterChain chain;
  chain.start(f.bindings, {});
  CHECK(chain.run(Phase::RequestHeaders, ctx) == Status::Stop);
  CHECK(f.journal.lines == std::vector<std::string>{"a headers", "b headers"});
  // Resumed: from the plugin after the one that waited.
  CHECK(chain.run(Phase::RequestHeaders, ctx) == Status::Continue);
  CHECK(f.journal.lines.back() == "c headers");
  CHECK(f.journal.lines.size() == 3);
}

TEST_CASE("filter_chain: streamed body pieces reach every plugin in order until one answers") {
  Fixture f;
  f.add("a");
  f.add("b");
  test::TestContext ctx;
  proxy::FilterChain chain;
  chain.start(f.bindings, {});
  CHECK(chain.run(Phase::RequestBody, ctx, "x", false) == Status::Continue);
  CHECK(chain.run(Phase::RequestBody, ctx, "", true) == Status::Continue);
  CHECK(f.journal.lines ==
        std::vector<std::string>{"a body 'x'", "b body 'x'", "a body '' end", "b body '' end"});

  f.journal.lines.clear();
  f.scripts[0]->onBody = Status::Respond;
  CHECK(chain.run(Phase::RequestBody, ctx, "y", false) == Status::Respond);
  CHECK(f.journal.lines == std::vector<std::string>{"a body 'y'"});  // b never sees it
}

TEST_CASE("filter_chain: every phase stops at Stop and goes on after it, restarts after Respond") {
  struct Case {
    Phase phase;
    Status Scripted::*status;
    std::string hook;
  };
  const Case cases[] = {{Phase::RequestHeaders, &Scripted::onHeaders, "headers"},
                        {Phase::RequestBody, &Scripted::onBody, "body 'p'"},
                        {Phase::ResponseHeaders, &Scripted::onResponse, "response"},
                        {Phase::ResponseBody, &Scripted::onResponseBody, "response body 'p'"}};
  for (const Case& c : cases) {
    CAPTURE(c.hook);
    Fixture f;
    f.add("a");
    Scripted& b = f.add("b");
    f.add("c");
    test::TestContext ctx;
    proxy::FilterChain chain;
    chain.start(f.bindings, {});
    b.*c.status = Status::Stop;
    CHECK(chain.run(c.phase, ctx, "p") == Status::Stop);
    CHECK(chain.stoppedBy() == "b");
    CHECK(f.journal.lines == std::vector<std::string>{"a " + c.hook, "b " + c.hook});
    // The same phase again: on from the plugin after the one that stopped.
    CHECK(chain.run(c.phase, ctx, "p") == Status::Continue);
    CHECK(f.journal.lines.back() == "c " + c.hook);
    CHECK(f.journal.lines.size() == 3);

    f.journal.lines.clear();
    b.*c.status = Status::Respond;
    CHECK(chain.run(c.phase, ctx, "p") == Status::Respond);
    CHECK(f.journal.lines == std::vector<std::string>{"a " + c.hook, "b " + c.hook});
    // After Respond the phase is over: a new run starts from the first plugin.
    f.journal.lines.clear();
    b.*c.status = Status::Continue;
    CHECK(chain.run(c.phase, ctx, "p") == Status::Continue);
    CHECK(f.journal.lines ==
          std::vector<std::string>{"a " + c.hook, "b " + c.hook, "c " + c.hook});
  }
}

TEST_CASE("filter_chain: a Stop in one phase does not carry into another") {
  Fixture f;
  f.add("a").onHeaders = Status::Stop;
  f.add("b");
  test::TestContext ctx;
  proxy::FilterChain chain;
  chain.start(f.bindings, {});
  CHECK(chain.run(Phase::RequestHeaders, ctx) == Status::Stop);
  f.journal.lines.clear();
  CHECK(chain.run(Phase::ResponseHeaders, ctx) == Status::Continue);
  CHECK(f.journal.lines == std::vector<std::string>{"a response", "b response"});
}

TEST_CASE("filter_chain: a status passed over lets the phase go on with the next plugin") {
  Fixture f;
  f.add("a").onResponseBody = Status::Respond;
  f.add("b");
  test::TestContext ctx;
  proxy::FilterChain chain;
  chain.start(f.bindings, {});
  CHECK(chain.run(Phase::ResponseBody, ctx, "p") == Status::Respond);
  chain.passOver();
  CHECK(chain.run(Phase::ResponseBody, ctx, "p") == Status::Continue);
  CHECK(f.journal.lines ==
        std::vector<std::string>{"a response body 'p'", "b response body 'p'"});
}

TEST_CASE("filter_chain: a Stop by the last plugin resumes to the end of the phase") {
  Fixture f;
  f.add("a");
  f.add("b").onHeaders = Status::Stop;
  test::TestContext ctx;
  proxy::FilterChain chain;
  chain.start(f.bindings, {});
  CHECK(chain.run(Phase::RequestHeaders, ctx) == Status::Stop);
  CHECK(chain.run(Phase::RequestHeaders, ctx) == Status::Continue);
  CHECK(f.journal.lines == std::vector<std::string>{"a headers", "b headers"});
}

TEST_CASE("filter_chain: response phases run every plugin; finish completes then destroys once") {
  Fixture f;
  f.add("a").onHeaders = Status::Respond;
  f.add("b");
  test::TestContext ctx;
  {
    proxy::FilterChain chain;
    chain.start(f.bindings, {});
    CHECK(chain.run(Phase::RequestHeaders, ctx) == Status::Respond);
    CHECK(chain.run(Phase::ResponseHeaders, ctx) == Status::Continue);
    chain.finish(ctx);
    chain.finish(ctx);
  }
  CHECK(f.journal.lines == std::vector<std::string>{"a headers", "a response", "b response",
                                                    "a complete", "b complete", "a destroy",
                                                    "b destroy"});
}

TEST_CASE("filter_chain: a plugin that recycles itself serves the next exchange of its binding") {
  Fixture f;
  Scripted& kept = f.add("kept");
  kept.recyclable = true;
  Scripted& fresh = f.add("fresh");
  test::TestContext ctx;
  proxy::FilterChain chain;
  for (int exchange = 0; exchange < 3; ++exchange) {
    chain.start(f.bindings, {});
    CHECK(chain.run(Phase::RequestHeaders, ctx) == Status::Continue);
    chain.finish(ctx);
  }
  CHECK(kept.created == 1);
  CHECK(fresh.created == 3);
  // Every exchange still ends with onComplete and onDestroy, and starts from a clean state.
  const std::vector<std::string> one{"kept headers",   "fresh headers", "kept complete",
                                     "fresh complete", "kept destroy",  "fresh destroy"};
  std::vector<std::string> three;
  for (int i = 0; i < 3; ++i) three.insert(three.end(), one.begin(), one.end());
  CHECK(f.journal.lines == three);
}

TEST_CASE(
    "filter_chain: a recycled plugin serves only the settings and worker state it was made for") {
  Fixture f;
  f.add("a").recyclable = true;
  test::TestContext ctx;
  proxy::FilterChain chain;
  auto exchange = [&](const std::vector<config::PluginBinding>& bindings,
                      std::span<plugin::WorkerState* const> states) {
    chain.start(bindings, states);
    chain.run(Phase::RequestHeaders, ctx);
    chain.finish(ctx);
  };
  exchange(f.bindings, {});
  CHECK(f.scripts[0]->created == 1);

  Fixture other;  // another route, or a reloaded configuration: other settings
  other.add("a").recyclable = true;
  exchange(other.bindings, {});
  CHECK(other.scripts[0]->created == 1);

  plugin::WorkerState state;
  plugin::WorkerState* states[] = {&state};
  exchange(other.bindings, states);
  CHECK(other.scripts[0]->created == 2);
  exchange(other.bindings, states);
  CHECK(other.scripts[0]->created == 2);
  CHECK(f.scripts[0]->created == 1);
}

TEST_CASE("filter_chain: an exchange that never finished leaves no plugin to recycle") {
  Fixture f;
  f.add("a").recyclable = true;
  test::TestContext ctx;
  proxy::FilterChain chain;
  chain.start(f.bindings, {});
  CHECK(chain.run(Phase::RequestHeaders, ctx) == Status::Continue);
  chain.start(f.bindings, {});
  CHECK(chain.run(Phase::RequestHeaders, ctx) == Status::Continue);
  CHECK(f.scripts[0]->created == 2);
  CHECK(f.journal.lines == std::vector<std::string>{"a headers", "a destroy", "a headers"});
}
