#include "sim/cli/progress.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iomanip>
#include <sstream>

#include "sim/config/error.hpp"

namespace tailsim {

Progress::Mode Progress::mode_for(const std::string& setting, bool is_terminal) {
  if (setting == "never") return Mode::kOff;
  if (setting == "always") return Mode::kBar;
  if (setting == "auto") return is_terminal ? Mode::kBar : Mode::kLines;
  throw InputError("", "--progress", "unknown setting '" + setting + "'; valid: auto, always, never");
}

double eta_seconds(double elapsed_s, double work_done, double work) {
  if (!(work_done > 0) || work_done >= work) return 0;
  return elapsed_s * (work - work_done) / work_done;
}

double Progress::steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Progress::Progress(std::ostream& err, Mode mode, std::string label, double interval_s, Clock clock)
    : err_(err), mode_(mode), label_(std::move(label)), interval_s_(interval_s), clock_(std::move(clock)),
      start_s_(clock_()), last_s_(start_s_) {}

void Progress::update(const RunProgress& p) {
  if (mode_ == Mode::kOff || p.units == 0) return;
  const double now = clock_();
  const bool last_unit = p.units_done == p.units;
  // A bar redraws at most 10 times a second; lines every interval (and not at all for short runs).
  if (mode_ == Mode::kBar ? (now - last_s_ < 0.1 && !last_unit) : (now - last_s_ < interval_s_ || last_unit)) return;
  last_s_ = now;
  const double elapsed = now - start_s_;
  const double rate = elapsed > 0 ? static_cast<double>(p.units_done) / elapsed : 0;
  const double eta = eta_seconds(elapsed, p.work_done, p.work);
  const double share = p.work > 0 ? std::min(1.0, p.work_done / p.work) : 0;
  std::ostringstream os;
  os << std::fixed << std::setprecision(1);
  if (mode_ == Mode::kBar) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(kWidth * share);
    os << '\r' << label_ << " [" << std::string(static_cast<std::size_t>(filled), '#')
       << std::string(static_cast<std::size_t>(kWidth - filled), '.') << "] " << p.units_done << '/' << p.units
       << " units, " << 100.0 * share << "% of the work, ETA " << eta << " s ";
    drawn_ = true;
  } else {
    os << "[progress] " << label_ << ": " << p.units_done << '/' << p.units << " units, " << 100.0 * share
       << "% of the work, " << rate << " units/s, ETA " << eta << " s\n";
  }
  err_ << os.str() << std::flush;
}

void Progress::finish() {
  if (drawn_) err_ << '\n' << std::flush;
  drawn_ = false;
}

}  // namespace tailsim
