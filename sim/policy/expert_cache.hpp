// A GPU's cache of expert weights for one layer (the prefetch policy): at most `capacity` experts in HBM,
// least recently used out first. Small (a few experts), so a flat vector.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

namespace tailsim {

class ExpertCache {
 public:
  explicit ExpertCache(int capacity = 0) : capacity_(capacity) {}
  int capacity() const { return capacity_; }
  bool contains(int expert) const {
    for (const Entry& e : entries_)
      if (e.expert == expert) return true;
    return false;
  }
  // Uses `expert` at time `stamp`: true (and its recency updated) when it is cached.
  bool touch(int expert, std::int64_t stamp) {
    for (Entry& e : entries_)
      if (e.expert == expert) {
        e.stamp = stamp;
        return true;
      }
    return false;
  }
  // Caches `expert` (not cached yet) at time `stamp`; returns the expert evicted for it, if the cache was full.
  std::optional<int> insert(int expert, std::int64_t stamp) {
    if (capacity_ < 1) return expert;  // no room at all: it passes through
    if (static_cast<int>(entries_.size()) < capacity_) {
      entries_.push_back({expert, stamp});
      return std::nullopt;
    }
    Entry* oldest = &entries_[0];
    for (Entry& e : entries_)
      if (e.stamp < oldest->stamp) oldest = &e;
    const int out = oldest->expert;
    *oldest = {expert, stamp};
    return out;
  }

 private:
  struct Entry {
    int expert;
    std::int64_t stamp;
  };
  int capacity_;
  std::vector<Entry> entries_;
};

}  // namespace tailsim
