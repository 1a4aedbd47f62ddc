// Files a user names and files tailsim writes: the one reader of users' text files, the one atomic writer,
// and the CSV field splitting every table reader shares.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tailsim {

// The whole of a file a user names, as text. InputError(file) when it is not a regular file (a folder, a
// device such as /dev/zero that would never end) or cannot be opened; `what` names it ("trace file").
// Every file it reads is recorded by the InputFiles alive on this thread, if any.
std::string read_text_file(const std::string& file, const std::string& what);

// What a run reads besides its scenario document: while an InputFiles is alive, every file read_text_file
// reads on this thread (config files under configs/, routing traces, profile tables, samples files: every
// reader of a user's or the project's files goes through read_text_file) is recorded once, in the order
// first read, with a hash of its content. `tailsim run` keeps one alive while it loads the scenario and builds
// its points (all on one thread, before any simulation), and puts the hashes into the fingerprint of its
// records log, so a file edited between an interruption and --resume is noticed instead of mixing old and
// new results. Recording the reads, rather than walking the scenario for the keys that name files, cannot
// miss a key or resolve a name differently from the reader. Nested recorders: the inner one records.
// While it is alive a file is read once: every later read_text_file of the same path (another sweep point,
// another policy) gets the first read's content, so a file edited during loading cannot give two points
// two versions; and parse_shared hands every point the one parsed copy of a large file.
class InputFiles {
 public:
  struct File {
    std::string path;    // as read
    std::uint64_t hash;  // FNV-1a of the content
  };
  InputFiles();
  ~InputFiles();
  InputFiles(const InputFiles&) = delete;
  InputFiles& operator=(const InputFiles&) = delete;

  const std::vector<File>& files() const { return files_; }
  void add(const std::string& path, const std::string& content);
  // The content of `path` if this recorder has read it.
  const std::string* content(const std::string& path) const;

 private:
  template <class T>
  friend std::shared_ptr<const T> parse_shared(const std::string& key, const std::function<T()>& parse);
  InputFiles* outer_;
  std::vector<File> files_;
  std::map<std::string, std::string> contents_;
  std::map<std::string, std::shared_ptr<const void>> parsed_;
};

InputFiles* current_input_files();

// The result of `parse()` (which reads a file), shared by every caller with the same `key` while an
// InputFiles is alive on this thread; the key names the file and everything the parse depends on
// ("samples:" + path). Without a recorder alive, parses every time.
template <class T>
std::shared_ptr<const T> parse_shared(const std::string& key, const std::function<T()>& parse) {
  InputFiles* inputs = current_input_files();
  if (!inputs) return std::make_shared<const T>(parse());
  const auto found = inputs->parsed_.find(key);
  if (found != inputs->parsed_.end()) return std::static_pointer_cast<const T>(found->second);
  auto made = std::make_shared<const T>(parse());
  inputs->parsed_.emplace(key, made);
  return made;
}

// Writes `content` to `path` through a temporary file in the same folder and a rename, so readers see
// the old file or the new one, never half of one. The temporary file is created anew (never through a
// link or over a file already there), written in full and synced before the rename; the folder is synced
// after it. InputError(path) when the folder does not exist or may not be written (the user's doing);
// IoError(path) when a write fails (disk full, I/O error).
void write_atomically(const std::string& path, const std::string& content);
// Files written together (results.json and results.csv): every temporary file is written before any is
// renamed into place, so a failed write leaves all the old files (and no temporary file).
struct FileContent {
  std::string path;
  std::string content;
};
void write_atomically_all(const std::vector<FileContent>& files);
// write_atomically, keeping the new file open: returns its descriptor (for appending to a log), which the
// caller closes.
int write_atomically_keep_open(const std::string& path, const std::string& content);
// Writes all of `data` to the descriptor `fd` (retrying short writes and interruptions); IoError(path)
// when it cannot (ENOSPC, EIO, EFBIG).
void write_all(int fd, std::string_view data, const std::string& path);
// Creates DIR if needed and checks it can be written; throws InputError naming `flag` otherwise.
void prepare_output_dir(const std::string& dir, const std::string& flag);

// MemAvailable from /proc/meminfo, if it can be read.
std::optional<std::uint64_t> available_memory_bytes();

// `s` without leading and trailing spaces, tabs and carriage returns.
std::string_view trim_blanks(std::string_view s);
// The comma-separated fields of one CSV line, each trimmed (no quoting: tailsim's tables hold none).
// The views point into `line`.
std::vector<std::string_view> split_csv_fields(std::string_view line);

}  // namespace tailsim
