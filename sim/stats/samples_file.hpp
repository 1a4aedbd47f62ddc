// Reading an empirical distribution's samples file: one plain number per line (seconds or a factor),
// '#' comments, an optional header line, a UTF-8 byte order mark tolerated; anything else is refused with
// the file and line.
#pragma once
#include <string>
#include <vector>

#include "sim/config/json_reader.hpp"

namespace tailsim {

// The samples file `node[file_key]` names, relative to the scenario's folder.
std::string samples_path(const JsonReader& node, const std::string& file_key);
// Its values, in file order; InputError at node[file_key] naming the file and line of a bad entry.
std::vector<double> read_samples_file(const JsonReader& node, const std::string& file_key);

}  // namespace tailsim
