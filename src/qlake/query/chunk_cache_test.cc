#include "qlake/query/chunk_cache.h"

#include <thread>
#include <vector>

#include <arrow/array.h>
#include <arrow/builder.h>
#include <gtest/gtest.h>

namespace qlake::query {
namespace {

// A chunk of `n` int64 values (8 * n bytes of data).
ColumnChunkCache::Value Chunk(int64_t n) {
  arrow::Int64Builder b;
  for (int64_t i = 0; i < n; ++i) EXPECT_TRUE(b.Append(i).ok());
  return std::make_shared<arrow::ChunkedArray>(b.Finish().ValueOrDie());
}

TEST(ChunkCache, HitsMissesAndLruEviction) {
  const int64_t one = ColumnChunkCache::SizeOf(*Chunk(1000));
  ColumnChunkCache cache(3 * one);
  cache.Put("a", Chunk(1000));
  cache.Put("b", Chunk(1000));
  cache.Put("c", Chunk(1000));
  EXPECT_TRUE(cache.Get("a"));  // a is now most recent
  cache.Put("d", Chunk(1000));  // evicts b, the least recently used
  EXPECT_FALSE(cache.Get("b"));
  EXPECT_TRUE(cache.Get("a"));
  EXPECT_TRUE(cache.Get("c"));
  EXPECT_TRUE(cache.Get("d"));
  auto s = cache.stats();
  EXPECT_EQ(s.hits, 4);
  EXPECT_EQ(s.misses, 1);
  EXPECT_EQ(s.evictions, 1);
  EXPECT_EQ(s.entries, 3);
  EXPECT_EQ(s.bytes, 3 * one);
  EXPECT_DOUBLE_EQ(s.hit_rate(), 0.8);
}

TEST(ChunkCache, GetOrLoadCachesOnlySuccess) {
  ColumnChunkCache cache(1 << 20);
  int loads = 0;
  auto load = [&]() -> arrow::Result<ColumnChunkCache::Value> {
    ++loads;
    return Chunk(10);
  };
  auto v1 = cache.GetOrLoad("k", load).ValueOrDie();
  auto v2 = cache.GetOrLoad("k", load).ValueOrDie();
  EXPECT_EQ(loads, 1);
  EXPECT_EQ(v1.get(), v2.get());  // the same arrays: no copy
  auto bad = cache.GetOrLoad("e", []() -> arrow::Result<ColumnChunkCache::Value> {
    return arrow::Status::IOError("disk on fire");
  });
  EXPECT_TRUE(bad.status().IsIOError());
  EXPECT_FALSE(cache.Get("e"));
}

TEST(ChunkCache, TooBigAndDisabled) {
  ColumnChunkCache small(100);
  small.Put("big", Chunk(1000));
  EXPECT_EQ(small.stats().entries, 0);
  ColumnChunkCache off(0);
  off.Put("x", Chunk(1));
  EXPECT_FALSE(off.Get("x"));
}

TEST(ChunkCache, MemoryTiersShrinkAndRestore) {
  const int64_t one = ColumnChunkCache::SizeOf(*Chunk(1000));
  ColumnChunkCache cache(4 * one);
  for (const char* k : {"a", "b", "c", "d"}) cache.Put(k, Chunk(1000));
  EXPECT_EQ(cache.stats().entries, 4);
  cache.OnMemoryTier(MemoryTier::kWarn);
  EXPECT_EQ(cache.stats().entries, 2);
  EXPECT_EQ(cache.stats().capacity, 2 * one);
  cache.OnMemoryTier(MemoryTier::kCritical);
  EXPECT_EQ(cache.stats().entries, 0);
  cache.Put("e", Chunk(1000));  // a quarter of the budget: one entry fits
  cache.Put("f", Chunk(1000));
  EXPECT_EQ(cache.stats().entries, 1);
  cache.OnMemoryTier(MemoryTier::kNormal);
  EXPECT_EQ(cache.stats().capacity, 4 * one);
  cache.SetCapacity(one);
  EXPECT_LE(cache.stats().bytes, one);
}

TEST(ChunkCache, ConcurrentReadersAndWriters) {
  const int64_t one = ColumnChunkCache::SizeOf(*Chunk(100));
  ColumnChunkCache cache(20 * one);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        std::string key = "k" + std::to_string((i * 7 + t) % 40);
        auto v = cache.GetOrLoad(key, [] { return arrow::Result(Chunk(100)); });
        ASSERT_TRUE(v.ok());
        ASSERT_EQ((*v)->length(), 100);
      }
    });
  }
  for (auto& th : threads) th.join();
  auto s = cache.stats();
  EXPECT_EQ(s.hits + s.misses, 8000);
  EXPECT_LE(s.bytes, 20 * one);
  EXPECT_EQ(s.bytes, s.entries * one);
}

}  // namespace
}  // namespace qlake::query
