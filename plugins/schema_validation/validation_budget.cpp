#include "plugins/schema_validation/validation_budget.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace gw::plugins::schema_validation {

namespace {
// An allocation costs a step, and a step per this many bytes it copies or holds.
constexpr std::size_t kBytesPerStep = 128;
constexpr uint64_t kStepsPerAllocation = 64;
constexpr uint64_t kStepsPerValidator = 10;
}  // namespace

struct alignas(std::max_align_t) ValidationBudget::Header {
  ValidationBudget* budget;
  Header* previous;
  Header* next;
  std::size_t size;
};

ValidationBudget::~ValidationBudget() {
  while (blocks_ != nullptr) {
    Header* next = blocks_->next;
    std::free(blocks_);
    blocks_ = next;
  }
}

bool ValidationBudget::isValidator(std::size_t size) {
  // A hash array or a stack of exactly this size counts too: an overcount, so still an upper
  // bound.
  return size == sizeof(BudgetedValidator);
}

void ValidationBudget::charge(uint64_t steps) {
  steps_ += steps;
  if (steps_ > maxSteps_) throw Exhausted{Exhausted::What::Steps};
}

void ValidationBudget::chargeEvent(std::size_t bytes) {
  charge((liveValidators_ + 1) * (kStepsPerValidator + 3 * bytes) + liveBytes_ / kBytesPerStep);
}

void* ValidationBudget::track(Header* header, std::size_t size) {
  header->budget = this;
  header->previous = nullptr;
  header->next = blocks_;
  header->size = size;
  if (blocks_ != nullptr) blocks_->previous = header;
  blocks_ = header;
  liveBytes_ += size;
  if (isValidator(size)) ++liveValidators_;
  return header + 1;
}

void* ValidationBudget::Malloc(std::size_t size) {
  if (size == 0) return nullptr;
  charge(kStepsPerAllocation + size / kBytesPerStep);
  if (liveBytes_ + size > maxBytes_) throw Exhausted{Exhausted::What::Memory};
  auto* header = static_cast<Header*>(std::malloc(sizeof(Header) + size));
  if (header == nullptr) throw std::bad_alloc();
  return track(header, size);
}

void* ValidationBudget::Realloc(void* original, std::size_t originalSize, std::size_t newSize) {
  if (original == nullptr) return Malloc(newSize);
  if (newSize == 0) {
    Free(original);
    return nullptr;
  }
  void* moved = Malloc(newSize);
  std::memcpy(moved, original, originalSize < newSize ? originalSize : newSize);
  Free(original);
  return moved;
}

void ValidationBudget::Free(void* block) noexcept {
  if (block == nullptr) return;
  Header* header = static_cast<Header*>(block) - 1;
  ValidationBudget& budget = *header->budget;
  budget.liveBytes_ -= header->size;
  if (isValidator(header->size)) --budget.liveValidators_;
  if (header->previous != nullptr) header->previous->next = header->next;
  if (header->next != nullptr) header->next->previous = header->previous;
  if (budget.blocks_ == header) budget.blocks_ = header->next;
  std::free(header);
}

}  // namespace gw::plugins::schema_validation
