#pragma once
// The fuzz targets' referee: what a strict HTTP/1.1 peer (llhttp in strict mode, the parser
// Node.js ships, driven directly and with none of gatewayd's code) reads from the bytes gatewayd
// sends it. The targets check that gatewayd's output reads as the messages it meant.

#include <llhttp.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gw::fuzz {

struct Message {
  int status = 0;                                           // responses
  std::string method;                                       // requests
  std::string target;                                       // requests
  std::vector<std::pair<std::string, std::string>> fields;  // of the head (trailers not kept)
  std::string body;                                         // decoded (de-chunked)
  int versionMajor = 0;
  int versionMinor = 0;
  bool chunked = false;           // framed by the chunked coding
  bool hasContentLength = false;  // framed by Content-Length
  bool keepAlive = false;         // llhttp_should_keep_alive() once complete
  bool complete = false;

  // How many fields are named `name` (ASCII case-insensitively).
  std::size_t count(std::string_view name) const;
  // The value of the first field named `name` ("" when there is none).
  std::string_view value(std::string_view name) const;
};

// ASCII lower case.
std::string lower(std::string_view s);
std::string_view trimOws(std::string_view s);
// The non-empty elements of a comma-separated list (empty ones are ignored, RFC 9110 §5.6.1),
// appended to `out`.
void addElements(std::string_view list, std::vector<std::string>& out);
// The options of every Connection field of `message`, lower-cased.
std::vector<std::string> connectionOptions(const Message& message);
bool contains(const std::vector<std::string>& list, std::string_view item);
// RFC 9110 §7.6.1's hop-by-hop names (and Proxy-*), written out here rather than taken from
// http::classifyField, so that a slip in the gateway's classification shows.
bool hopByHop(std::string_view lowerName);

// The body of an answer the gateway made itself: {"error":{"code":"...",...}}.
bool isErrorBody(std::string_view body);

// Reads every message in `bytes`, an Upgrade request's followers included (the gateway never
// switches protocols). `headRequest`: the response answers a HEAD (its body is never sent).
// read() returns llhttp's verdict on the whole input (HPE_OK when it all parsed, possibly ending
// inside a message; `consumed` then tells how far it got on error).
class Reader {
 public:
  explicit Reader(llhttp_type_t type, bool headRequest = false);
  // Responses to pipelined requests: headAnswers[i] says whether the i-th final response answers
  // a HEAD (past the list, none does).
  Reader(llhttp_type_t type, std::vector<bool> headAnswers);
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  llhttp_errno_t read(std::string_view bytes);
  // The peer closed: ends a close-delimited body; an error if a message was cut short.
  llhttp_errno_t finish();
  const std::vector<Message>& messages() const { return messages_; }
  // True when the input ended between messages (nothing of a next one begun).
  bool betweenMessages() const { return !inMessage_; }
  std::size_t consumed() const { return consumed_; }

 private:
  static int onMessageBegin(llhttp_t* p);
  static int onUrl(llhttp_t* p, const char* at, std::size_t length);
  static int onMethod(llhttp_t* p, const char* at, std::size_t length);
  static int onHeaderField(llhttp_t* p, const char* at, std::size_t length);
  static int onHeaderValue(llhttp_t* p, const char* at, std::size_t length);
  static int onHeaderValueComplete(llhttp_t* p);
  static int onHeadersComplete(llhttp_t* p);
  static int onBody(llhttp_t* p, const char* at, std::size_t length);
  static int onMessageComplete(llhttp_t* p);

  llhttp_settings_t settings_;
  llhttp_t parser_;
  bool headRequest_;
  std::vector<bool> headAnswers_;
  std::size_t finalResponses_ = 0;  // heads of final responses seen so far
  bool inMessage_ = false;
  bool inHead_ = false;  // fields after the head are a chunked body's trailers: not kept
  bool inValue_ = false;
  std::size_t consumed_ = 0;
  std::vector<Message> messages_;
};

}  // namespace gw::fuzz
