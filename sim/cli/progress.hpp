// Progress of a run on stderr: a bar redrawn in place with rate and ETA when stderr is a terminal, a plain
// log line every `interval` seconds when it is not (CI logs), nothing with `--progress never`.
#pragma once
#include <cstddef>
#include <functional>
#include <ostream>
#include <string>

#include "sim/run/runner.hpp"

namespace tailsim {

// Seconds left when `work_done` of `work` took `elapsed_s`, at the same rate per unit of work; 0 before any
// work is done (nothing to go on) and once it is all done.
double eta_seconds(double elapsed_s, double work_done, double work);

class Progress {
 public:
  enum class Mode { kBar, kLines, kOff };
  using Clock = std::function<double()>;  // seconds since any fixed origin
  // `setting` is auto, always or never (auto: a bar on a terminal, lines otherwise).
  static Mode mode_for(const std::string& setting, bool is_terminal);
  static double steady_seconds();  // the default clock

  Progress(std::ostream& err, Mode mode, std::string label, double interval_s = 10.0, Clock clock = steady_seconds);
  // The share done and the ETA are by work (RunProgress::work), the counts shown are units.
  void update(const RunProgress& progress);
  void finish();  // ends the bar's line

 private:
  std::ostream& err_;
  Mode mode_;
  std::string label_;
  double interval_s_;
  Clock clock_;
  double start_s_, last_s_;
  bool drawn_ = false;
};

}  // namespace tailsim
