// The step times of a run, kept for the summary: every value (exact quantiles) while memory allows, or a
// log-bucketed histogram sketch beyond (--quantiles sketch, or chosen when exact would not fit).
//
// The sketch keeps, exactly, the count, the sum (128-bit integer nanoseconds: the mean is exact), the
// maximum, and a compensated sum of squares (the standard deviation to ~1e-15 relative); and a histogram
// whose buckets are exact below 1,024 ns and above cover [m, m + 2^(e-10)) for values in [2^e, 2^(e+1)):
// 1,024 buckets per power of two, at most 55,296 buckets (432 KiB), whatever the number of steps. A
// quantile is read at the bucket's midpoint, so its relative error is at most 2^-11 (0.049 %) beyond the
// exact method's (numpy's linear interpolation between order statistics, which the sketch follows on the
// bucket representatives).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sim/core/time.hpp"
#include "sim/stats/summary.hpp"

namespace tailsim {

class StepTimes {
 public:
  StepTimes();
  explicit StepTimes(bool sketch);
  StepTimes(const StepTimes& other);
  StepTimes& operator=(const StepTimes& other);
  StepTimes(StepTimes&&) noexcept;
  StepTimes& operator=(StepTimes&&) noexcept;
  ~StepTimes();

  bool is_sketch() const { return sketch_ != nullptr; }
  std::size_t size() const;
  void reserve(std::size_t n);
  void add(SimTime ns);
  // Appends `other` (a sketch absorbs exact values; exact + sketch becomes a sketch).
  void merge(const StepTimes& other);
  // The exact values in order of addition (empty for a sketch).
  const std::vector<SimTime>& values() const { return values_; }
  StepTimeSummary summarize() &&;

  // Bytes for another process of the same binary (MPI), and back.
  void serialize(std::string& out) const;
  static StepTimes deserialize(const std::string& in, std::size_t& pos);

  bool operator==(const StepTimes& other) const;

  // Bucket of a value and the value a bucket stands for (its midpoint; exact below 1,024 ns).
  static std::size_t bucket_of(SimTime ns);
  static double bucket_value(std::size_t bucket);

 private:
  struct Sketch;
  std::vector<SimTime> values_;
  std::unique_ptr<Sketch> sketch_;
};

// Bytes a sketch occupies (for the memory estimate).
inline constexpr std::uint64_t kStepSketchBytes = 55296 * 8 + 64;

}  // namespace tailsim
