#pragma once
// The bound on the work and memory one body's validation may take. RapidJSON's validator creates
// a parallel validator per allOf/anyOf/oneOf/not/dependencies subschema for each value, each
// nested in the one that made it, and passes every later event of that value down to all of
// them: a recursive schema with overlapping branches makes their number grow exponentially with
// the body's nesting (a 330-byte body took 9.8 s and 3.2 GB), and one event can create millions
// of validators before the parser hands over the next. Nothing in RapidJSON can stop it midway,
// so ValidationBudget is its state allocator (every validator, stack and hash array comes from
// it) and throws Exhausted from an allocation, or from a charge per event, once the body has
// cost more than its bound. The thrower's caller abandons the validator (its state is half
// updated) and the budget frees every block it still holds.

#include <rapidjson/document.h>
#include <rapidjson/schema.h>

#include <cstddef>
#include <cstdint>

namespace gw::plugins::schema_validation {

class ValidationBudget {
 public:
  // A RapidJSON allocator must be default-constructible (unused: every validator gets one).
  explicit ValidationBudget(uint64_t maxSteps = 0, std::size_t maxBytes = 0)
      : maxSteps_(maxSteps), maxBytes_(maxBytes) {}
  ~ValidationBudget();
  ValidationBudget(const ValidationBudget&) = delete;
  ValidationBudget& operator=(const ValidationBudget&) = delete;

  // What ran out; thrown through RapidJSON's frames to the one catch in validateBody.
  struct Exhausted {
    enum class What : uint8_t { Steps, Memory } what;
  };

  // RapidJSON's Allocator concept. Free is static there: each block starts with a header naming
  // its budget.
  static constexpr bool kNeedFree = true;
  void* Malloc(std::size_t size);
  void* Realloc(void* original, std::size_t originalSize, std::size_t newSize);
  static void Free(void* block) noexcept;

  // Charges one parser event carrying `bytes` of string or key, before it reaches the
  // validator: an upper bound of what it costs. Each live validator (the root is not allocated
  // here) takes it and reads the string (hashing, matching a pattern, copying a key into its
  // path); each visits its schema contexts, which live in its stack (120 bytes each), and each
  // context's hasher takes it; uniqueItems scans its hash array (16 bytes an element). Those are
  // all live blocks: a step per kBytesPerStep of them.
  void chargeEvent(std::size_t bytes);

  uint64_t steps() const { return steps_; }
  std::size_t liveBytes() const { return liveBytes_; }

 private:
  struct Header;
  void charge(uint64_t steps);
  void* track(Header* header, std::size_t size);
  static bool isValidator(std::size_t size);

  uint64_t maxSteps_;
  std::size_t maxBytes_;
  uint64_t steps_ = 0;
  std::size_t liveBytes_ = 0;
  std::size_t liveValidators_ = 0;
  Header* blocks_ = nullptr;  // every block handed out and not freed, newest first
};

using BudgetedValidator = rapidjson::GenericSchemaValidator<
    rapidjson::SchemaDocument, rapidjson::BaseReaderHandler<rapidjson::UTF8<>>, ValidationBudget>;

}  // namespace gw::plugins::schema_validation
