#include "qlake/query/chunk_cache.h"

#include <arrow/array.h>
#include <arrow/util/byte_size.h>

namespace qlake::query {

ColumnChunkCache::ColumnChunkCache(int64_t capacity_bytes)
    : capacity_(capacity_bytes < 0 ? 0 : capacity_bytes) {}

int64_t ColumnChunkCache::SizeOf(const arrow::ChunkedArray& value) {
  int64_t total = 0;
  for (const auto& chunk : value.chunks()) {
    total += arrow::util::TotalBufferSize(*chunk->data());
  }
  return total;
}

int64_t ColumnChunkCache::LimitLocked() const {
  switch (tier_) {
    case MemoryTier::kWarn:
      return capacity_ / 2;
    case MemoryTier::kCritical:
      return capacity_ / 4;
    default:
      return capacity_;
  }
}

void ColumnChunkCache::EvictLocked(int64_t limit) {
  while (bytes_ > limit && !lru_.empty()) {
    auto& e = lru_.back();
    bytes_ -= e.bytes;
    index_.erase(e.key);
    lru_.pop_back();
    ++evictions_;
  }
}

ColumnChunkCache::Value ColumnChunkCache::Get(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->value;
}

void ColumnChunkCache::Put(const std::string& key, Value value) {
  if (!value) return;
  const int64_t bytes = SizeOf(*value);
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t limit = LimitLocked();
  if (bytes > limit) return;
  auto it = index_.find(key);
  if (it != index_.end()) {
    bytes_ -= it->second->bytes;
    lru_.erase(it->second);
    index_.erase(it);
  }
  lru_.push_front(Entry{key, std::move(value), bytes});
  index_[key] = lru_.begin();
  bytes_ += bytes;
  EvictLocked(limit);
}

arrow::Result<ColumnChunkCache::Value> ColumnChunkCache::GetOrLoad(const std::string& key,
                                                                   const Loader& load) {
  if (auto v = Get(key)) return v;
  ARROW_ASSIGN_OR_RAISE(Value v, load());
  Put(key, v);
  return v;
}

void ColumnChunkCache::SetCapacity(int64_t capacity_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  capacity_ = capacity_bytes < 0 ? 0 : capacity_bytes;
  EvictLocked(LimitLocked());
}

void ColumnChunkCache::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  EvictLocked(-1);
}

CacheStats ColumnChunkCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  CacheStats s;
  s.hits = hits_;
  s.misses = misses_;
  s.evictions = evictions_;
  s.entries = static_cast<int64_t>(lru_.size());
  s.bytes = bytes_;
  s.capacity = LimitLocked();
  return s;
}

void ColumnChunkCache::ResetCounters() {
  std::lock_guard<std::mutex> lock(mu_);
  hits_ = misses_ = evictions_ = 0;
}

void ColumnChunkCache::OnMemoryTier(MemoryTier tier) {
  std::lock_guard<std::mutex> lock(mu_);
  tier_ = tier;
  EvictLocked(tier == MemoryTier::kCritical ? -1 : LimitLocked());
}

}  // namespace qlake::query
