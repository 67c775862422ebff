// schema_validation through the real gatewayd: valid bodies reach the backend byte for byte,
// everything refused never reaches it, and each refusal has its status, code and message.
#include <doctest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <filesystem>

#include "test/support/harness.h"

using namespace gw::it;

namespace {

namespace fs = std::filesystem;

// The repository root. meson gives __FILE__ relative to the build directory, which is three
// levels above this binary (build/test/integration/integration_tests).
fs::path sourceRoot() {
  const auto isRoot = [](const fs::path& dir) {
    return fs::exists(dir / "conf" / "schemas" / "example-order.json");
  };
  const fs::path fromFile = fs::path(__FILE__).parent_path() / ".." / ".." / "..";
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  for (const fs::path& candidate :
       {fromFile, exe.parent_path().parent_path().parent_path() / fromFile}) {
    if (isRoot(candidate)) return fs::weakly_canonical(candidate);
  }
  for (fs::path dir = fs::current_path(); dir != dir.parent_path(); dir = dir.parent_path()) {
    if (isRoot(dir)) return dir;
  }
  return fromFile;
}

std::string config(const Backend& b) {
  const fs::path schema = sourceRoot() / "conf" / "schemas" / "example-order.json";
  REQUIRE_MESSAGE(fs::exists(schema), schema.string());
  return subst(R"(workers: 1
listeners:
  - address: 127.0.0.1
    port: ${PORT}
upstreams:
  - name: main
    backends:
      - ${B}
routes:
  - match: {prefix: /orders}
    upstream: main
    plugins:
      - schema_validation:
          schema_file: ${SCHEMA}
          max_body_bytes: 512
  - match: {prefix: /inline}
    upstream: main
    plugins:
      - schema_validation:
          schema:
            type: object
            required: [name]
            properties:
              name: {type: string, minLength: 2}
              tags: {type: array, items: {type: string}}
  - match: {prefix: /issue825}
    upstream: main
    plugins:
      - schema_validation:
          schema:
            type: object
            patternProperties:
              "^x-": {type: object}
            additionalProperties: false
  - match: {prefix: /recursive}
    upstream: main
    plugins:
      - schema_validation:
          schema:
            anyOf:
              - {items: {$ref: "#"}}
              - {items: {$ref: "#"}}
  - match: {prefix: /search}
    upstream: main
    plugins:
      - schema_validation:
          query:
            page: {type: integer, minimum: 1, maximum: 100}
            sort: {enum: [asc, desc]}
          headers:
            X-Tenant: {required: true, pattern: "^[a-z]+$"}
)",
               {{"B", b.address()}, {"SCHEMA", schema.string()}});
}

std::string post(std::string_view target, std::string_view body,
                 std::string_view content_type = "application/json") {
  return request("POST", target, "Content-Type: " + std::string(content_type) + "\r\n", body);
}

std::string errorMessage(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("error") || !d["error"].IsObject() ||
      !d["error"].HasMember("message") || !d["error"]["message"].IsString()) {
    return "<not an error body: " + body + ">";
  }
  return d["error"]["message"].GetString();
}

struct Fixture {
  Backend b;
  Gateway gw{config(b)};
  Fixture() { b.reset(); }
};

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// `r` is the gateway's refusal: `status`, `code` and a message holding `fragment`.
void checkRefusal(const Response& r, int status, std::string_view code, std::string_view fragment) {
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == status);
  CHECK(errorCode(r.body) == code);
  CHECK_MESSAGE(contains(errorMessage(r.body), fragment), errorMessage(r.body));
}

}  // namespace

TEST_CASE("plugins schema: a valid body is forwarded byte for byte") {
  Fixture f;
  Client c(f.gw.port());
  const std::string body =
      "{ \"customer_id\" : \"AB123456\",\n\t\"items\": [ {\"sku\":\"a-1\", \"qty\": 2} ] ,"
      "\"metadata\": {\"x-source\": \"web\"}, \"note\": \"a\\u00e9 \\\"q\\\"\"  }\r\n";
  Response r = c.roundTrip(post("/orders", body));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK_MESSAGE(r.status == 200, r.body);
  Echo e = parseEcho(r.body);
  REQUIRE(e.valid);
  CHECK(e.body == body);
  CHECK(e.body_bytes == body.size());
  CHECK(e.header("Content-Length").value_or("<none>") == std::to_string(body.size()));

  // An inline schema, on the same connection.
  r = c.roundTrip(post("/inline", R"({"name":"ok","tags":["a"]})"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK_MESSAGE(r.status == 200, r.body);
  CHECK(parseEcho(r.body).body == R"({"name":"ok","tags":["a"]})");
  CHECK(f.b.stats().requests == 2);
}

TEST_CASE("plugins schema: an invalid body -> 400 VALIDATION_FAILED, backend sees nothing") {
  Fixture f;
  Client c(f.gw.port());
  Response r = c.roundTrip(
      post("/orders", R"({"customer_id":"AB123456","items":[{"sku":"a","qty":0}]})"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 400);
  CHECK(errorCode(r.body) == "VALIDATION_FAILED");
  std::string message = errorMessage(r.body);
  INFO("message: " << message);
  CHECK(contains(message, "keyword=minimum"));
  CHECK(contains(message, "schema_path="));
  CHECK(contains(message, "instance_path=#/items/0/qty"));

  r = c.roundTrip(post("/inline", R"({"name":"x"})"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 400);
  CHECK(errorCode(r.body) == "VALIDATION_FAILED");
  message = errorMessage(r.body);
  CHECK(contains(message, "keyword=minLength"));
  CHECK(contains(message, "instance_path=#/name"));

  r = c.roundTrip(post("/inline", R"({"tags":[]})"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 400);
  CHECK(errorCode(r.body) == "VALIDATION_FAILED");
  CHECK(contains(errorMessage(r.body), "keyword=required"));
  CHECK(f.b.stats().requests == 0);
}

TEST_CASE("plugins schema: malformed JSON -> 400 INVALID_JSON with the byte offset") {
  Fixture f;
  Client c(f.gw.port());
  Response r = c.roundTrip(post("/inline", R"({"name": "ok",})"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK(r.status == 400);
  CHECK(errorCode(r.body) == "INVALID_JSON");
  const std::string message = errorMessage(r.body);
  INFO("message: " << message);
  CHECK(contains(message, "malformed JSON at byte 14"));
  CHECK(f.b.stats().requests == 0);
}

TEST_CASE("plugins schema: wrong Content-Type -> 415, too large -> 413, backend sees nothing") {
  Fixture f;
  {
    Client c(f.gw.port());
    Response r = c.roundTrip(post("/inline", R"({"name":"ok"})", "text/plain"));
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 415);
    CHECK(errorCode(r.body) == "UNSUPPORTED_MEDIA_TYPE");
  }
  {
    // application/*+json and parameters are accepted.
    Client c(f.gw.port());
    Response r =
        c.roundTrip(post("/inline", R"({"name":"ok"})", "application/vnd.api+json; charset=utf-8"));
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK_MESSAGE(r.status == 200, r.body);
  }
  {
    Client c(f.gw.port());
    std::string body = R"({"customer_id":"AB123456","items":[{"sku":"a","qty":1}],"note":")" +
                       std::string(600, 'n') + "\"}";
    Response r = c.roundTrip(post("/orders", body));
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 413);
    CHECK(errorCode(r.body) == "PAYLOAD_TOO_LARGE");
  }
  CHECK(f.b.stats().requests == 1);  // only the +json request
}

TEST_CASE("plugins schema: a valid chunked body is forwarded with Content-Length") {
  Fixture f;
  Client c(f.gw.port());
  const std::string body = R"({"name": "chunked",  "tags": ["x", "y"]})";
  std::string req =
      "POST /inline HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  for (std::size_t i = 0; i < body.size(); i += 7) {
    const std::string piece = body.substr(i, 7);
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
    req += size + piece + "\r\n";
  }
  req += "0\r\n\r\n";
  Response r = c.roundTrip(req);
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK_MESSAGE(r.status == 200, r.body);
  Echo e = parseEcho(r.body);
  REQUIRE(e.valid);
  CHECK(e.body == body);
  CHECK(e.header("Content-Length").value_or("<none>") == std::to_string(body.size()));
  CHECK(e.headerCount("Transfer-Encoding") == 0);
}

TEST_CASE("plugins schema: query and header constraints") {
  Fixture f;
  Client c(f.gw.port());
  Response r = c.roundTrip(get("/search?page=3&sort=asc", "X-Tenant: acme\r\n"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK_MESSAGE(r.status == 200, r.body);
  CHECK(parseEcho(r.body).target == "/search?page=3&sort=asc");

  struct Bad {
    std::string target, headers, fragment;
  };
  const std::string tenant = "X-Tenant: acme\r\n";
  for (const Bad& bad : {
           Bad{"/search?page=0", tenant, "query parameter 'page' failed keyword=minimum"},
           Bad{"/search?page=abc", tenant, "query parameter 'page' failed keyword=type"},
           Bad{"/search?sort=up", tenant, "query parameter 'sort' failed keyword=enum"},
           Bad{"/search", "", "header 'X-Tenant' failed keyword=required"},
           Bad{"/search", "X-Tenant: ACME\r\n", "header 'X-Tenant' failed keyword=pattern"},
       }) {
    INFO(bad.target << " " << bad.headers);
    r = c.roundTrip(get(bad.target, bad.headers));
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == 400);
    CHECK(errorCode(r.body) == "VALIDATION_FAILED");
    CHECK_MESSAGE(contains(errorMessage(r.body), bad.fragment), errorMessage(r.body));
  }
  CHECK(f.b.stats().requests == 1);
}

TEST_CASE("plugins schema: RapidJSON #825 shape gives correct verdicts and no crash") {
  Fixture f;
  struct Case {
    std::string target, body;
    int status;
    std::string fragment;
  };
  for (const Case& k : {
           // The first member matches only a patternProperties pattern.
           Case{"/issue825", R"({"x-a":{"b":{"c":{}}},"x-b":{}})", 200, ""},
           Case{"/issue825", R"({"x-a":{"b":1},"y":{"z":{}}})", 400,
                "keyword=additionalProperties"},
           // RapidJSON names the object's keyword for a failing pattern property's value.
           Case{"/issue825", R"({"x-a":"not an object"})", 400, "keyword=patternProperties"},
           Case{"/issue825", R"({"y":{"z":{}}})", 400, "keyword=additionalProperties"},
           Case{"/orders",
                R"({"customer_id":"AB123456","items":[{"sku":"a","qty":1}],)"
                R"("metadata":{"x-one":"v","x-two":"w"}})",
                200, ""},
           Case{"/orders",
                R"({"customer_id":"AB123456","items":[{"sku":"a","qty":1}],)"
                R"("metadata":{"x-one":{"nested":{}}}})",
                400, "keyword=patternProperties"},
           Case{"/orders",
                R"({"customer_id":"AB123456","items":[{"sku":"a","qty":1}],)"
                R"("metadata":{"x-one":"v","Other":"w"}})",
                400, "keyword=additionalProperties"},
       }) {
    INFO(k.target << " " << k.body);
    Client c(f.gw.port());
    Response r = c.roundTrip(post(k.target, k.body));
    REQUIRE_MESSAGE(r.complete, r.error);
    CHECK(r.status == k.status);
    if (k.status == 200) {
      CHECK(parseEcho(r.body).body == k.body);
    } else {
      CHECK(errorCode(r.body) == "VALIDATION_FAILED");
      CHECK_MESSAGE(contains(errorMessage(r.body), k.fragment), errorMessage(r.body));
    }
    REQUIRE(f.gw.process().running());
  }
  CHECK(f.b.stats().requests == 2);
}

TEST_CASE(
    "plugins schema: validation work is bounded: 413 BODY_TOO_COMPLEX at once, worker lives") {
  Fixture f;
  Client c(f.gw.port());
  // Overlapping branches recursing through items: 2^depth parallel validators (before, 18 levels
  // took 5 s and depth 22 exhausted 4 GB; the report's 330-byte body took 9.8 s and 3.2 GB).
  for (const int depth : {18, 64}) {
    INFO("depth " << depth);
    const auto start = std::chrono::steady_clock::now();
    Response r =
        c.roundTrip(post("/recursive", std::string(depth, '[') + std::string(depth, ']')), 5000ms);
    const auto took = std::chrono::steady_clock::now() - start;
    checkRefusal(r, 413, "BODY_TOO_COMPLEX",
                 "body failed keyword=max_validation_memory: validating it takes more than "
                 "16777216 bytes of validator state");
    CHECK(took < 2000ms);
  }
  // The same worker answers the next request on the route at once.
  Response r = c.roundTrip(post("/recursive", "[[[]]]"));
  REQUIRE_MESSAGE(r.complete, r.error);
  CHECK_MESSAGE(r.status == 200, r.body);
  CHECK(parseEcho(r.body).body == "[[[]]]");
  CHECK(f.b.stats().requests == 1);
}

TEST_CASE("plugins schema: an escaped NUL cannot cut a pattern short, in a string or a key") {
  Fixture f;
  const std::string items = R"("items":[{"sku":"a","qty":1}])";
  for (const std::string& body : {
           // RapidJSON's regex stops at the NUL: "AB123456" matched and the rest rode along.
           R"({"customer_id":"AB123456\u0000'; DROP TABLE orders;--",)" + items + "}",
           // The key matched ^x-[a-z0-9-]+$ up to the NUL, past additionalProperties: false.
           R"({"customer_id":"AB123456",)" + items + R"(,"metadata":{"x-a\u0000<script>":"v"}})",
       }) {
    INFO(body);
    Client c(f.gw.port());
    checkRefusal(c.roundTrip(post("/orders", body)), 400, "VALIDATION_FAILED",
                 "body failed keyword=nul: a string or key holds U+0000, which schema patterns "
                 "cannot check");
  }
  CHECK(f.b.stats().requests == 0);
}

TEST_CASE("plugins schema: a body is checked only under exactly one JSON Content-Type field") {
  Fixture f;
  const std::string body = R"({"name":"ok"})";
  struct Case {
    std::string headers, fragment;
  };
  for (const Case& k : {
           // Before, the first field was checked and both were forwarded: a backend reading the
           // last one parsed the body as something never validated.
           Case{"Content-Type: application/json\r\nContent-Type: text/plain\r\n",
                "Content-Type must be given once, got 2 fields"},
           Case{"Content-Type: application/json\r\ncontent-type: application/json\r\n",
                "Content-Type must be given once, got 2 fields"},
           // One field listing two types: the '+json' suffix belonged to the second one.
           Case{"Content-Type: application/x-www-form-urlencoded, application/a+json\r\n",
                "Content-Type must be application/json or application/*+json"},
       }) {
    INFO(k.headers);
    Client c(f.gw.port());
    checkRefusal(c.roundTrip(request("POST", "/inline", k.headers, body)), 415,
                 "UNSUPPORTED_MEDIA_TYPE", k.fragment);
  }
  CHECK(f.b.stats().requests == 0);
}

TEST_CASE("plugins schema: a chunked body is checked whatever the method") {
  Fixture f;
  // The plugin looked for Transfer-Encoding among the fields it is given, which never hold a
  // hop-by-hop one: a chunked body on a method other than POST, PUT or PATCH went to the backend
  // unchecked.
  for (const std::string_view method : {"DELETE", "GET", "OPTIONS", "POST"}) {
    INFO(method);
    Client c(f.gw.port());
    const std::string req = std::string(method) +
                            " /inline HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/json"
                            "\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[]\r\n0\r\n\r\n";
    checkRefusal(c.roundTrip(req), 400, "VALIDATION_FAILED", "keyword=type");
  }
  CHECK(f.b.stats().requests == 0);
}
