// The one writer of output files: temporary files created without following links, pairs of files replaced
// together, failures to write that are I/O errors (exit 74) rather than bad input, and user input quoted
// short and printable in messages.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "sim/config/error.hpp"
#include "sim/config/files.hpp"
#include "tests/helpers.hpp"

namespace tailsim {

namespace fs = std::filesystem;

namespace {

std::set<std::string> names_in(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

}  // namespace

TEST_CASE("write_atomically does not follow a symlink planted at its temporary file's name") {
  const fs::path dir = test::temp_dir("planted");
  const fs::path elsewhere = test::temp_dir("planted-elsewhere");
  const fs::path victim = elsewhere / "victim.txt", absent = elsewhere / "absent.txt";
  std::ofstream(victim) << "precious\n";
  const std::string pid = std::to_string(::getpid());
  fs::create_symlink(victim, dir / (".results.json.tmp" + pid));
  fs::create_symlink(absent, dir / (".results.csv.tmp" + pid));  // a dangling link: nothing may be created
  write_atomically((dir / "results.json").string(), "{}\n");
  write_atomically((dir / "results.csv").string(), "a,b\n");
  CHECK(test::read_file(victim) == "precious\n");
  CHECK_FALSE(fs::exists(absent));
  for (const char* f : {"results.json", "results.csv"}) {
    INFO(f);
    CHECK(fs::is_regular_file(fs::symlink_status(dir / f)));
  }
  CHECK(test::read_file(dir / "results.json") == "{}\n");
  CHECK(test::read_file(dir / "results.csv") == "a,b\n");
  // The planted links are left as they were (not followed, not removed).
  CHECK(fs::is_symlink(dir / (".results.json.tmp" + pid)));
  fs::remove_all(dir);
  fs::remove_all(elsewhere);
}

TEST_CASE("write_atomically_all replaces every file or none") {
  const fs::path dir = test::temp_dir("pair");
  std::ofstream(dir / "results.json") << "old json\n";
  std::ofstream(dir / "results.csv") << "old csv\n";
  SUBCASE("the second file's temporary file cannot be created: both old files stay") {
    CHECK_THROWS(write_atomically_all({{(dir / "results.json").string(), "new json\n"},
                                       {(dir / "no-such-folder" / "results.csv").string(), "new csv\n"}}));
    CHECK(test::read_file(dir / "results.json") == "old json\n");
    CHECK(test::read_file(dir / "results.csv") == "old csv\n");
    CHECK(names_in(dir) == std::set<std::string>{"results.csv", "results.json"});  // no temporary file left
  }
  SUBCASE("all writes succeed: both new files") {
    write_atomically_all({{(dir / "results.json").string(), "new json\n"}, {(dir / "results.csv").string(), "new csv\n"}});
    CHECK(test::read_file(dir / "results.json") == "new json\n");
    CHECK(test::read_file(dir / "results.csv") == "new csv\n");
    CHECK(names_in(dir) == std::set<std::string>{"results.csv", "results.json"});
  }
  fs::remove_all(dir);
}

TEST_CASE("a write that fails mid-way (disk full) is an IoError naming the path and the reason") {
  const int fd = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  bool thrown = false;
  try {
    write_all(fd, std::string(100000, 'x'), "out/results.json");
  } catch (const IoError& e) {
    thrown = true;
    CHECK(e.path() == "out/results.json");
    CHECK(e.error_number() == ENOSPC);
    CHECK(std::string(e.what()).find("out/results.json") != std::string::npos);
    CHECK(std::string(e.what()).find(std::strerror(ENOSPC)) != std::string::npos);
  } catch (const std::exception& e) {
    FAIL("not an IoError: " << e.what());
  }
  CHECK(thrown);
  ::close(fd);
}

TEST_CASE("quote_input quotes user input short and printable") {
  CHECK(quote_input("abc") == "'abc'");
  CHECK(quote_input("") == "''");
  CHECK(quote_input(std::string("a\0b\n\x1b", 5)) == "'a\\x00b\\x0a\\x1b'");
  CHECK(quote_input("caf\xc3\xa9") == "'caf\xc3\xa9'");  // UTF-8 passes through
  const std::string big(2'000'000, 'y');
  const std::string q = quote_input(big);
  CHECK(q.size() < 120);
  CHECK(q.rfind("'" + std::string(80, 'y') + "...' (2000000 bytes)", 0) == 0);
  // Escapes count towards the cap too; a cut never splits an escape.
  const std::string q2 = quote_input(std::string(1000, '\x01'));
  CHECK(q2.size() < 120);
  CHECK(q2.find("...' (1000 bytes)") != std::string::npos);
  CHECK(q2.find("\\x01...") != std::string::npos);
}

}  // namespace tailsim

namespace tailsim {

TEST_CASE("while an InputFiles is alive a file is read once: an edit during loading is not seen") {
  const std::string file = test::write_temp("read-once.txt", "first\n");
  const InputFiles reads;
  CHECK(read_text_file(file, "file") == "first\n");
  test::write_temp("read-once.txt", "second, longer\n");
  CHECK(read_text_file(file, "file") == "first\n");  // another sweep point gets the first read
  REQUIRE(reads.files().size() == 1);
  CHECK(reads.files()[0].path == file);
}

TEST_CASE("parse_shared parses once per recorder, and every time without one") {
  int parses = 0;
  const std::function<int()> parse = [&] { return ++parses; };
  {
    const InputFiles reads;
    const auto a = parse_shared<int>("k", parse);
    const auto b = parse_shared<int>("k", parse);
    const auto c = parse_shared<int>("other", parse);
    CHECK(a.get() == b.get());
    CHECK(*a == 1);
    CHECK(*c == 2);
  }
  const auto d = parse_shared<int>("k", parse);
  const auto e = parse_shared<int>("k", parse);
  CHECK(d.get() != e.get());
  CHECK(parses == 4);
}

}  // namespace tailsim
