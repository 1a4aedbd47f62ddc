#include "sim/scenario/configs.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace tailsim {

namespace fs = std::filesystem;

fs::path config_root() {
  if (const char* env = std::getenv("TAILSIM_CONFIG_DIR"); env && *env) return fs::path(env);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const fs::path& candidate : {exe.parent_path().parent_path() / "configs",
                                      exe.parent_path().parent_path() / "share" / "tailsim" / "configs"})
      if (fs::is_directory(candidate)) return candidate;
  }
  return fs::path(TAILSIM_SOURCE_DIR) / "configs";
}

std::vector<std::string> config_names(const std::string& kind) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(config_root() / kind, ec))
    if (entry.path().extension() == ".json") names.push_back(entry.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

ConfigDoc load_config(const JsonReader& at, const std::string& kind, const std::string& name) {
  const std::vector<std::string> names = config_names(kind);
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    const std::string hint = closest_match(name, names);
    at.fail("unknown " + kind.substr(0, kind.size() - 1) + " '" + name + "'" +
            (hint.empty() ? "" : " (did you mean '" + hint + "'?)") + "; valid: " + join(names) + " (from " +
            (config_root() / kind).string() + ")");
  }
  const std::string file = (config_root() / kind / (name + ".json")).string();
  return ConfigDoc{file, parse_json_file(file)};
}

Json parse_json_text(const std::string& text, const std::string& file) {
  // Deeply nested documents would exhaust the stack in the recursive parts of the JSON library (found by
  // fuzzing: 200,000 '[' crashed `tailsim validate`); no scenario or config needs more than a few levels.
  const auto depth_guard = [&](int depth, Json::parse_event_t event, Json&) {
    if (depth >= kMaxJsonDepth &&
        (event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start))
      throw InputError(file, "", "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    return true;
  };
  try {
    return Json::parse(text, depth_guard);
  } catch (const Json::parse_error& e) {
    // nlohmann reports a byte offset; users want a line and a column.
    std::size_t line = 1, column = 1;
    const std::size_t end = std::min<std::size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
    for (std::size_t i = 0; i < end; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    std::string what = e.what();
    if (const auto pos = what.find("parse error"); pos != std::string::npos) what = what.substr(pos);
    throw InputError(file, "", "invalid JSON at line " + std::to_string(line) + ", column " +
                                   std::to_string(column) + ": " + what);
  } catch (const Json::out_of_range& e) {  // a number beyond double's range, such as 1e400 (found by fuzzing)
    std::string what = e.what();
    if (const auto pos = what.find("] "); pos != std::string::npos) what = what.substr(pos + 2);
    throw InputError(file, "", "invalid JSON: " + what);
  }
}

Json parse_json_file(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file, "", "cannot open file (does it exist and is it readable?)");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_json_text(text.str(), file);
}

}  // namespace tailsim
