#include "gateway/observability/access_log.h"
#include "test/support/files.h"

#include <doctest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace obs = gw::observability;
using Field = obs::AccessLogFormat::Field;

using gw::test::readFile;
using gw::test::splitLines;
using gw::test::TempDir;

namespace {

rapidjson::Document parseLine(const std::string& line) {
  rapidjson::Document doc;
  doc.Parse(line.data(), line.size());
  REQUIRE_MESSAGE(!doc.HasParseError(), "not JSON: " << line);
  REQUIRE(doc.IsObject());
  return doc;
}

std::string lineOf(const obs::AccessLogRecord& record, const obs::AccessLogFormat& format) {
  std::string out;
  obs::appendAccessLine(record, format, out);
  REQUIRE(!out.empty());
  REQUIRE(out.back() == '\n');
  REQUIRE(out.find('\n') == out.size() - 1);
  return out;
}

const std::array<obs::AccessLogHeader, 4> kSecretHeaders = {{
    {"Authorization", "Bearer s3cr3t"},
    {"Cookie", "session=s3cr3t"},
    {"X-Api-Key", "s3cr3t"},
    {"X-Tenant", "acme"},
}};

// Plugins' fields as the registry gives them (names by slot) and values a record carries.
constexpr std::string_view kPluginFields[] = {"cache", "rate_limit"};
constexpr std::string_view kPluginValues[] = {"miss", "allowed"};

obs::AccessLogRecord fullRecord() {
  obs::AccessLogRecord r;
  r.time_us = 1795838706'789123;  // 2026-11-28T04:05:06.789123Z
  r.request_id = "req-1";
  r.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  r.span_id = "00f067aa0ba902b7";
  r.client = "127.0.0.1:5555";
  r.method = "GET";
  r.path = "/api/items";
  r.query = "x=1&y=2";
  r.route = "api";
  r.upstream = "backend";
  r.backend = "127.0.0.1:9000";
  r.status = 200;
  r.bytes_in = 123;
  r.bytes_out = 4567;
  r.duration_us = 12345;
  r.upstream_duration_us = 10001;
  r.attempts = 2;
  r.plugin_fields = kPluginValues;
  r.user_agent = "curl/8.0";
  return r;
}

}  // namespace

TEST_CASE("AccessLogFormat::fieldByName knows exactly the JSON keys") {
  for (std::size_t i = 0; i < obs::AccessLogFormat::kFieldCount; ++i) {
    const auto field = static_cast<Field>(i);
    if (field == Field::Plugins) continue;  // a place in the order, not a key
    CHECK(obs::AccessLogFormat::fieldByName(obs::AccessLogFormat::fieldName(field)) == field);
  }
  CHECK_FALSE(obs::AccessLogFormat::fieldByName("cache").has_value());  // a plugin's
  CHECK(obs::AccessLogFormat::fieldByName("duration_ms") == Field::DurationMs);
  CHECK(obs::AccessLogFormat::fieldByName("headers") == Field::Headers);
  CHECK_FALSE(obs::AccessLogFormat::fieldByName("Time").has_value());
  CHECK_FALSE(obs::AccessLogFormat::fieldByName("query").has_value());
  CHECK_FALSE(obs::AccessLogFormat::fieldByName("").has_value());
}

TEST_CASE("appendAccessLine writes every field in the fixed order, the plugins' in theirs") {
  const obs::AccessLogFormat format(kPluginFields);
  const std::string line = lineOf(fullRecord(), format);
  rapidjson::Document doc = parseLine(line);

  std::vector<std::string> keys;
  for (const auto& member : doc.GetObject()) keys.emplace_back(member.name.GetString());
  std::vector<std::string> expected;
  for (std::size_t i = 0; i < obs::AccessLogFormat::kFieldCount; ++i) {
    if (static_cast<Field>(i) == Field::Plugins) {
      expected.insert(expected.end(), std::begin(kPluginFields), std::end(kPluginFields));
    } else {
      expected.emplace_back(obs::AccessLogFormat::fieldName(static_cast<Field>(i)));
    }
  }
  CHECK(expected[15] == "attempts");
  CHECK(expected[16] == "cache");  // between attempts and error, as always
  CHECK(expected[18] == "error");
  CHECK(keys == expected);

  CHECK(std::string(doc["time"].GetString()) == "2026-11-28T04:05:06.789Z");
  CHECK(std::string(doc["request_id"].GetString()) == "req-1");
  CHECK(std::string(doc["trace_id"].GetString()) == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(std::string(doc["span_id"].GetString()) == "00f067aa0ba902b7");
  CHECK(std::string(doc["client"].GetString()) == "127.0.0.1:5555");
  CHECK(std::string(doc["method"].GetString()) == "GET");
  CHECK(std::string(doc["path"].GetString()) == "/api/items?x=1&y=2");
  CHECK(std::string(doc["route"].GetString()) == "api");
  CHECK(std::string(doc["upstream"].GetString()) == "backend");
  CHECK(std::string(doc["backend"].GetString()) == "127.0.0.1:9000");
  CHECK(doc["status"].GetInt() == 200);
  CHECK(doc["bytes_in"].GetUint64() == 123);
  CHECK(doc["bytes_out"].GetUint64() == 4567);
  CHECK(line.find("\"duration_ms\":12.345,") != std::string::npos);
  CHECK(line.find("\"upstream_duration_ms\":10.001,") != std::string::npos);
  CHECK(doc["attempts"].GetUint() == 2);
  CHECK(std::string(doc["cache"].GetString()) == "miss");
  CHECK(std::string(doc["rate_limit"].GetString()) == "allowed");
  CHECK(doc["error"].IsNull());
  CHECK(std::string(doc["user_agent"].GetString()) == "curl/8.0");
  CHECK(doc["headers"].IsObject());
  CHECK(doc["headers"].MemberCount() == 0);
}

TEST_CASE("absent values are null; durations keep three decimals") {
  obs::AccessLogRecord r;
  r.time_us = 1709251199'999999;  // leap day, last millisecond of the second
  r.method = "GET";
  r.path = "/";
  r.status = 502;
  r.duration_us = 7;
  r.error = "UPSTREAM_UNAVAILABLE";
  const std::string line = lineOf(r, obs::AccessLogFormat(kPluginFields));
  rapidjson::Document doc = parseLine(line);
  CHECK(std::string(doc["time"].GetString()) == "2024-02-29T23:59:59.999Z");
  for (const char* key :
       {"request_id", "trace_id", "span_id", "client", "route", "upstream", "backend",
        "upstream_duration_ms", "attempts", "cache", "rate_limit", "user_agent"}) {
    CHECK_MESSAGE(doc[key].IsNull(), key);
  }
  CHECK(line.find("\"duration_ms\":0.007,") != std::string::npos);
  CHECK(std::string(doc["error"].GetString()) == "UPSTREAM_UNAVAILABLE");
  CHECK(std::string(doc["path"].GetString()) == "/");

  // The per-thread second cache must follow the clock both ways.
  r.time_us = 1795838706'000000;
  CHECK(std::string(parseLine(lineOf(r, obs::AccessLogFormat()))["time"].GetString()) ==
        "2026-11-28T04:05:06.000Z");
  r.time_us = 1795838707'001000;
  CHECK(std::string(parseLine(lineOf(r, obs::AccessLogFormat()))["time"].GetString()) ==
        "2026-11-28T04:05:07.001Z");
  r.time_us = 0;
  CHECK(std::string(parseLine(lineOf(r, obs::AccessLogFormat()))["time"].GetString()) ==
        "1970-01-01T00:00:00.000Z");
}

TEST_CASE("setFields keeps only the chosen keys, still in the fixed order") {
  obs::AccessLogFormat format(kPluginFields);
  const std::array<std::string, 4> fields = {"rate_limit", "status", "time", "path"};
  format.setFields(fields);
  CHECK(format.has("status"));
  CHECK(format.has("rate_limit"));
  CHECK_FALSE(format.has("method"));
  CHECK_FALSE(format.has("cache"));
  const std::string line = lineOf(fullRecord(), format);
  CHECK(line ==
        "{\"time\":\"2026-11-28T04:05:06.789Z\",\"path\":\"/api/items?x=1&y=2\",\"status\":200,"
        "\"rate_limit\":\"allowed\"}\n");

  format.setFields({});
  CHECK(lineOf(fullRecord(), format) == "{}\n");
}

TEST_CASE("strings are escaped and invalid UTF-8 cannot break the line") {
  obs::AccessLogRecord r = fullRecord();
  const std::string agent("q\"b\\s\n\r\t\x01\x1f\x7f", 11);
  const std::string badUtf8 =
      "/\xff|\xc0\xaf|\xed\xa0\x80|\xe2\x82|\xf4\x90\x80\x80|\xc3\xa9|\xf0\x9f\x98\x80|\xe2\x82";
  r.user_agent = agent;
  r.path = badUtf8;
  r.query = "";
  const std::string line = lineOf(r, obs::AccessLogFormat());
  rapidjson::Document doc = parseLine(line);
  CHECK(std::string(doc["user_agent"].GetString()) == agent);
  CHECK(line.find("\"user_agent\":\"q\\\"b\\\\s\\n\\r\\t\\u0001\\u001f\\u007f\"") !=
        std::string::npos);
  // Each invalid byte becomes U+FFFD; well-formed sequences (é, U+1F600) pass through.
  const std::string fffd = "\xef\xbf\xbd";
  CHECK(std::string(doc["path"].GetString()) ==
        "/" + fffd + "|" + fffd + fffd + "|" + fffd + fffd + fffd + "|" + fffd + fffd + "|" + fffd +
            fffd + fffd + fffd + "|\xc3\xa9|\xf0\x9f\x98\x80|" + fffd + fffd);
}

TEST_CASE("query values of masked parameters become ***") {
  obs::AccessLogFormat format;
  obs::AccessLogRecord r = fullRecord();
  auto loggedPath = [&] { return std::string(parseLine(lineOf(r, format))["path"].GetString()); };

  r.query = "api_key=s3cr3t&x=1";
  CHECK(loggedPath() == "/api/items?api_key=***&x=1");
  r.query = "x=1&API%5fKey=s3cr3t&Token=s3cr3t&password=&secret=a%26b&access_token=s3cr3t";
  CHECK(loggedPath() ==
        "/api/items?x=1&API%5fKey=***&Token=***&password=***&secret=***&access_token=***");
  // Empty parts, a bare name, ';' separators, and names that only look similar.
  r.query = "&token&x=1;token=s3cr3t&&tokens=keep&%74oken=s3cr3t&";
  CHECK(loggedPath() == "/api/items?&token&x=1;token=***&&tokens=keep&%74oken=***&");
  r.query = "to%ken=a&api+key=b&token%=c";
  CHECK(loggedPath() == "/api/items?to%ken=a&api+key=b&token%=c");

  const std::array<std::string, 2> custom = {"Session", "sig"};
  format.setMaskedQueryParams(custom);
  r.query = "session=s3cr3t&SIG=s3cr3t&token=visible";
  CHECK(loggedPath() == "/api/items?session=***&SIG=***&token=visible");
  CHECK(format.queryParamMasked("%53ession"));
  CHECK_FALSE(format.queryParamMasked("sessions"));
}

TEST_CASE("logged headers are masked case-insensitively") {
  obs::AccessLogFormat format;
  format.addMaskedHeader("x-API-key");
  CHECK(format.headerMasked("X-Api-Key"));
  CHECK(format.headerMasked("PROXY-AUTHORIZATION"));
  CHECK(format.headerMasked("set-cookie"));
  CHECK_FALSE(format.headerMasked("x-tenant"));

  obs::AccessLogRecord r = fullRecord();
  r.headers = kSecretHeaders;
  const std::string line = lineOf(r, format);
  rapidjson::Document doc = parseLine(line);
  const auto& headers = doc["headers"];
  CHECK(std::string(headers["Authorization"].GetString()) == "***");
  CHECK(std::string(headers["Cookie"].GetString()) == "***");
  CHECK(std::string(headers["X-Api-Key"].GetString()) == "***");
  CHECK(std::string(headers["X-Tenant"].GetString()) == "acme");
  CHECK(line.find("s3cr3t") == std::string::npos);
}

TEST_CASE("appendAccessLine does not allocate when the output has capacity") {
  obs::AccessLogFormat format;
  obs::AccessLogRecord r = fullRecord();
  r.headers = kSecretHeaders;
  r.query = "api_key=s3cr3t&x=1";
  std::string out;
  out.reserve(16 * 1024);
  const char* data = out.data();
  const std::size_t capacity = out.capacity();
  for (int i = 0; i < 10; ++i) {
    r.time_us += 700'000;  // crosses seconds: the cache refresh must not allocate either
    obs::appendAccessLine(r, format, out);
  }
  CHECK(out.data() == data);
  CHECK(out.capacity() == capacity);
  CHECK(splitLines(out).size() == 10);
}

TEST_CASE("AccessLogBuffer batches lines into the sink; secrets never reach the file") {
  TempDir dir;
  const std::string path = dir.path + "/access.log";
  auto sink = obs::LogSink::toFile(path);
  REQUIRE(sink.ok());
  obs::AccessLogFormat format;
  format.addMaskedHeader("X-Api-Key");

  obs::AccessLogRecord r = fullRecord();
  r.headers = kSecretHeaders;
  r.query = "api_key=s3cr3t&x=1";
  int total = 0;
  {
    obs::AccessLogBuffer buffer(**sink);
    CHECK_FALSE(buffer.due(0));  // empty is never due
    buffer.append(r, format, 1000);
    ++total;
    CHECK_FALSE(buffer.due(1000 + obs::AccessLogBuffer::kMaxAgeMs - 1));
    CHECK(buffer.due(1000 + obs::AccessLogBuffer::kMaxAgeMs));
    buffer.flush();
    CHECK(buffer.pendingLines() == 0);
    CHECK_FALSE(buffer.due(1'000'000));

    // Size-based: due before any time passes once kFlushBytes are pending.
    while (!buffer.due(2000)) {
      buffer.append(r, format, 2000);
      ++total;
    }
    CHECK(buffer.pendingLines() > 1);
    buffer.flush();
    buffer.append(r, format, 3000);  // left for the destructor to flush
    ++total;
  }
  (*sink)->stop();
  CHECK((*sink)->writtenLines() == static_cast<uint64_t>(total));
  CHECK((*sink)->droppedLines() == 0);

  const std::string text = readFile(path);
  CHECK(text.find("s3cr3t") == std::string::npos);
  const auto lines = splitLines(text);
  REQUIRE(lines.size() == static_cast<std::size_t>(total));
  for (const std::string& line : lines) {
    rapidjson::Document doc = parseLine(line);
    CHECK(std::string(doc["path"].GetString()) == "/api/items?api_key=***&x=1");
    CHECK(std::string(doc["headers"]["Authorization"].GetString()) == "***");
  }
}
