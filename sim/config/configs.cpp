#include "sim/config/configs.hpp"
#include "sim/config/files.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <unistd.h>

namespace tailsim {

namespace fs = std::filesystem;

fs::path data_root(const char* env_var, const std::string& folder) {
  if (const char* env = std::getenv(env_var); env && *env) return fs::path(env);
  if (const char* data = std::getenv("TAILSIM_DATA"); data && *data) return fs::path(data) / folder;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path prefix = exe.parent_path().parent_path();
    for (const fs::path& candidate : {prefix / folder, prefix / "share" / "tailsim" / folder})
      if (fs::is_directory(candidate)) return candidate;
  }
  return fs::path(TAILSIM_SOURCE_DIR) / folder;
}

fs::path config_root() { return data_root("TAILSIM_CONFIG_DIR", "configs"); }

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
    // "gpus" -> "gpu"; "noise" is both singular and plural.
    const std::string one = kind == "noise" ? "noise preset" : kind.substr(0, kind.size() - 1);
    at.fail("unknown " + one + " '" + name + "'" +
            (hint.empty() ? "" : " (did you mean '" + hint + "'?)") + "; valid: " + join(names) + " (from " +
            (config_root() / kind).string() + ")");
  }
  const std::string file = (config_root() / kind / (name + ".json")).string();
  return ConfigDoc{file, parse_json_file(file)};
}

std::string json_error_text(const Json::exception& e) {
  const std::string what = e.what();
  const auto pos = what.find("] ");
  return what.rfind("[json.exception.", 0) == 0 && pos != std::string::npos ? what.substr(pos + 2) : what;
}

Json::parser_callback_t json_input_guard(const std::string& file) {
  struct Frame {
    std::string path;
    std::set<std::string> keys;  // empty for an array
  };
  struct State {
    std::vector<Frame> frames;
    std::string last_key;
  };
  return [file, state = std::make_shared<State>()](int depth, Json::parse_event_t event, Json& parsed) {
    using E = Json::parse_event_t;
    std::vector<Frame>& frames = state->frames;
    if (event == E::object_start || event == E::array_start) {
      if (depth >= kMaxJsonDepth)
        throw InputError(file, "", "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
      const bool in_object = !frames.empty() && !frames.back().keys.empty();
      frames.push_back(
          {frames.empty() ? "" : frames.back().path + "/" + (in_object ? pointer_token(state->last_key) : "*"), {}});
    } else if (event == E::object_end || event == E::array_end) {
      if (!frames.empty()) frames.pop_back();
    } else if (event == E::key && !frames.empty()) {
      state->last_key = parsed.get<std::string>();
      if (!frames.back().keys.insert(state->last_key).second)
        throw InputError(file, frames.back().path + "/" + pointer_token(state->last_key),
                         "key '" + state->last_key + "' appears twice in the same object (only one value would be kept)");
    }
    return true;
  };
}

Json parse_json_text(const std::string& text, const std::string& file) {
  try {
    return Json::parse(text, json_input_guard(file));
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
    // Only our position: the library's own ("parse error at line 4, column 0: ") counts the character it
    // stopped on differently (the line after a bad literal), which gave two positions in one message.
    std::string what = e.what();
    if (const auto pos = what.find("parse error"); pos != std::string::npos) what = what.substr(pos);
    if (const auto colon = what.find(": "); what.rfind("parse error", 0) == 0 && colon != std::string::npos)
      what = what.substr(colon + 2);
    throw InputError(file, "", "invalid JSON at line " + std::to_string(line) + ", column " +
                                   std::to_string(column) + ": " + what);
  } catch (const Json::out_of_range& e) {  // a number beyond double's range, such as 1e400 (found by fuzzing)
    throw InputError(file, "", "invalid JSON: " + json_error_text(e));
  }
}

Json parse_json_file(const std::string& file) { return parse_json_text(read_text_file(file, "file"), file); }

}  // namespace tailsim
