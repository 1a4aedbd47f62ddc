// Progress of a run on stderr: a bar redrawn in place with rate and ETA when stderr is a terminal, a plain
// log line every `interval` seconds when it is not (CI logs), nothing with `--progress never`.
#pragma once
#include <chrono>
#include <cstddef>
#include <ostream>
#include <string>

namespace tailsim {

class Progress {
 public:
  enum class Mode { kBar, kLines, kOff };
  // `setting` is auto, always or never (auto: a bar on a terminal, lines otherwise).
  static Mode mode_for(const std::string& setting, bool is_terminal);

  Progress(std::ostream& err, Mode mode, std::string label, double interval_s = 10.0);
  void update(std::size_t done, std::size_t total);  // units of work
  void finish();                                      // ends the bar's line

 private:
  std::ostream& err_;
  Mode mode_;
  std::string label_;
  double interval_s_;
  std::chrono::steady_clock::time_point start_, last_;
  bool drawn_ = false;
};

}  // namespace tailsim
