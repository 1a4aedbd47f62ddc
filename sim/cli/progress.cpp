#include "sim/cli/progress.hpp"

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

Progress::Progress(std::ostream& err, Mode mode, std::string label, double interval_s)
    : err_(err), mode_(mode), label_(std::move(label)), interval_s_(interval_s),
      start_(std::chrono::steady_clock::now()), last_(start_) {}

void Progress::update(std::size_t done, std::size_t total) {
  if (mode_ == Mode::kOff || total == 0) return;
  const auto now = std::chrono::steady_clock::now();
  const double since_last = std::chrono::duration<double>(now - last_).count();
  const bool last_unit = done == total;
  // A bar redraws at most 10 times a second; lines every interval (and not at all for short runs).
  if (mode_ == Mode::kBar ? (since_last < 0.1 && !last_unit) : (since_last < interval_s_ || last_unit)) return;
  last_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  const double eta = rate > 0 ? static_cast<double>(total - done) / rate : 0;
  std::ostringstream os;
  os << std::fixed << std::setprecision(1);
  if (mode_ == Mode::kBar) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(kWidth * done / total);
    os << '\r' << label_ << " [" << std::string(static_cast<std::size_t>(filled), '#')
       << std::string(static_cast<std::size_t>(kWidth - filled), '.') << "] " << done << '/' << total << " units, "
       << rate << "/s, ETA " << eta << " s ";
    drawn_ = true;
  } else {
    os << "[progress] " << label_ << ": " << done << '/' << total << " units (" << 100.0 * static_cast<double>(done) / static_cast<double>(total)
       << "%), " << rate << " units/s, ETA " << eta << " s\n";
  }
  err_ << os.str() << std::flush;
}

void Progress::finish() {
  if (drawn_) err_ << '\n' << std::flush;
  drawn_ = false;
}

}  // namespace tailsim
