// Where the data folders are found (TAILSIM_DATA, next to the binary), and JSON syntax errors located once.
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

#include "sim/config/configs.hpp"
#include "sim/config/error.hpp"

namespace tailsim {

namespace {

std::string parse_error(const std::string& text) {
  try {
    (void)parse_json_text(text, "s.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

// Sets an environment variable for the life of the object, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_.empty()) ::unsetenv(name_);
    else ::setenv(name_, old_.c_str(), 1);
  }

 private:
  const char* name_;
  std::string old_;
};

}  // namespace

TEST_CASE("a JSON syntax error names one line and column, not the parser's second guess") {
  // The parser stops on the newline after "tru" and would say line 4, column 0.
  const std::string bad_literal = parse_error("{\n  \"a\": 1,\n  \"b\": tru\n}");
  CHECK(bad_literal.find("s.json: invalid JSON at line 3, column 11: syntax error while parsing value") != std::string::npos);
  CHECK(bad_literal.find("line 4") == std::string::npos);
  CHECK(bad_literal.find("parse error at") == std::string::npos);
  const std::string missing_value = parse_error("{\n  \"steps\": 10,\n  \"seed\": ,\n}");
  CHECK(missing_value.find("invalid JSON at line 3, column 11: syntax error") != std::string::npos);
  CHECK(missing_value.find("column", missing_value.find("column") + 1) == std::string::npos);  // one column only
}

TEST_CASE("TAILSIM_DATA moves every data folder; a folder's own variable still wins") {
  const ScopedEnv data("TAILSIM_DATA", "/opt/tailsim-data");
  CHECK(data_root("TAILSIM_TEST_UNSET_DIR", "configs") == "/opt/tailsim-data/configs");
  CHECK(data_root("TAILSIM_TEST_UNSET_DIR", "models") == "/opt/tailsim-data/models");
  const ScopedEnv own("TAILSIM_TEST_OWN_DIR", "/elsewhere/configs");
  CHECK(data_root("TAILSIM_TEST_OWN_DIR", "configs") == "/elsewhere/configs");
}

}  // namespace tailsim
