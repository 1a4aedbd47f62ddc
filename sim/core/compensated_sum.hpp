// A running sum of doubles with Neumaier's compensation: the error stays at a few ulps of the total however
// many terms are added (10^9 GPU-time terms lose nothing visible), where a plain sum drifts by up to
// n x ulp. Reads as a double.
#pragma once
#include <cmath>

namespace tailsim {

class CompensatedSum {
 public:
  CompensatedSum() = default;
  CompensatedSum(double v) : sum_(v) {}  // NOLINT(google-explicit-constructor): a sum starts from a value

  CompensatedSum& operator+=(double x) {
    const double t = sum_ + x;
    c_ += std::fabs(sum_) >= std::fabs(x) ? (sum_ - t) + x : (x - t) + sum_;
    sum_ = t;
    return *this;
  }
  CompensatedSum& operator-=(double x) { return *this += -x; }
  CompensatedSum& operator+=(const CompensatedSum& o) {
    *this += o.sum_;
    c_ += o.c_;
    return *this;
  }
  operator double() const { return sum_ + c_; }  // NOLINT(google-explicit-constructor)

  // The two parts, for sending a sum to another process without losing the compensation.
  double sum() const { return sum_; }
  double compensation() const { return c_; }
  static CompensatedSum from_parts(double sum, double compensation) {
    CompensatedSum s(sum);
    s.c_ = compensation;
    return s;
  }

 private:
  double sum_ = 0, c_ = 0;
};

}  // namespace tailsim
