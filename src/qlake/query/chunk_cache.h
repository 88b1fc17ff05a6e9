// File: qlake/query/chunk_cache.h
//
// An LRU cache of decoded Parquet column chunks (one column of one row group of one lake
// file, as Arrow arrays) with a byte budget (config query.cache_bytes). Repeated queries
// over the same days and symbols then skip reading, decompressing and decoding: they
// slice cached arrays, which is zero-copy.
//
// Keys name an immutable file version: the engine builds them from the file's path, size
// and CRC-32 as the commit record states them, so a re-ingested day never hits stale
// entries (they age out).
//
// Memory: the cache counts the bytes of the buffers it holds (buffers shared with results
// still held by callers stay alive until those results go). It gives memory back when the
// memory monitor says so (OnMemoryTier): at warn it shrinks to half its budget, at
// critical it empties and stays at a quarter until the tier is normal again.
//
// Thread safety: all methods may be called concurrently. A miss is loaded outside the
// lock; two threads missing the same key both load it (both count as misses) and the
// second insert wins.

#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <arrow/chunked_array.h>
#include <arrow/result.h>

#include "qlake/core/memory_monitor.h"

namespace qlake::query {

struct CacheStats {
  int64_t hits = 0;
  int64_t misses = 0;
  int64_t evictions = 0;
  int64_t entries = 0;
  int64_t bytes = 0;     // bytes of the entries held now
  int64_t capacity = 0;  // the budget in force now (after memory-tier shrinking)

  double hit_rate() const {
    return hits + misses == 0
               ? 0.0
               : static_cast<double>(hits) / static_cast<double>(hits + misses);
  }
};

class ColumnChunkCache {
 public:
  using Value = std::shared_ptr<arrow::ChunkedArray>;
  using Loader = std::function<arrow::Result<Value>()>;

  /// `capacity_bytes` 0 disables caching (every lookup is a miss, nothing is kept).
  explicit ColumnChunkCache(int64_t capacity_bytes);

  /// The cached value, or `load()`'s result, which is then cached if it fits. Errors of
  /// `load` are returned as they are and nothing is cached.
  arrow::Result<Value> GetOrLoad(const std::string& key, const Loader& load);
  /// The cached value or null; counts a hit or a miss.
  Value Get(const std::string& key);
  void Put(const std::string& key, Value value);

  void SetCapacity(int64_t capacity_bytes);
  void Clear();
  CacheStats stats() const;
  void ResetCounters();

  /// Memory-monitor hook (see the file comment).
  void OnMemoryTier(MemoryTier tier);

  /// Bytes of the buffers of `value` (what an entry is charged).
  static int64_t SizeOf(const arrow::ChunkedArray& value);

 private:
  struct Entry {
    std::string key;
    Value value;
    int64_t bytes;
  };
  void EvictLocked(int64_t limit);
  int64_t LimitLocked() const;

  mutable std::mutex mu_;
  std::list<Entry> lru_;  // front = most recently used
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  int64_t capacity_;
  MemoryTier tier_ = MemoryTier::kNormal;
  int64_t bytes_ = 0;
  int64_t hits_ = 0, misses_ = 0, evictions_ = 0;
};

}  // namespace qlake::query
