// RecordWriter: records.jsonl opened without following links, resumed from its verified lines, appended to
// one whole line at a time.
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim/config/error.hpp"
#include "sim/config/files.hpp"
#include "sim/report/records.hpp"

namespace tailsim {

namespace fs = std::filesystem;

namespace {

// A descriptor closed at the end of its scope unless released.
struct OwnedFd {
  int fd = -1;
  ~OwnedFd() {
    if (fd >= 0) ::close(fd);
  }
  int release() { return std::exchange(fd, -1); }
};

std::string read_all(int fd, const std::string& file) {
  std::string text;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw IoError(file, "cannot read", errno);
    if (n == 0) return text;
    text.append(buffer, static_cast<std::size_t>(n));
  }
}

}  // namespace

RecordWriter::RecordWriter(const std::string& dir, const Json& header, bool resume, bool timing)
    : file_((fs::path(dir) / "records.jsonl").string()), check_key_(records_check_key(header)), timing_(timing) {
  OwnedFd log;
  if (resume) {
    // Never through a link: a records.jsonl planted as a link would have tailsim cut and append to
    // whatever file it points to.
    log.fd = ::open(file_.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (log.fd < 0 && errno == ELOOP)
      throw InputError(file_, "",
                       "cannot resume: it is a symbolic link, and tailsim does not follow links in its output folder "
                       "(remove it, or use another --out)");
    if (log.fd < 0 && errno != ENOENT)
      throw InputError(file_, "", std::string("cannot open to resume: ") + std::strerror(errno));
  }
  if (log.fd >= 0) {
    struct stat st {};
    if (::fstat(log.fd, &st) != 0 || !S_ISREG(st.st_mode))
      throw InputError(file_, "", "cannot resume: not a regular file");
    LogChecks checks;
    checks.run_header = &header;
    checks.lenient = true;
    ParsedLog parsed = scan_record_log(read_all(log.fd, file_), file_, checks);
    for (const std::string& why : parsed.log.rejected) warnings_.push_back(file_ + ": " + why);
    // Drop a line cut short, or rewrite the log as if the lines left out had never been written.
    const std::size_t keep = parsed.dropped ? 0 : static_cast<std::size_t>(parsed.good_bytes);
    if (::ftruncate(log.fd, static_cast<off_t>(keep)) != 0) throw IoError(file_, "cannot cut the log", errno);
    if (::lseek(log.fd, 0, SEEK_END) < 0) throw IoError(file_, "cannot append", errno);
    if (parsed.dropped) write_all(log.fd, parsed.kept, file_);
    completed_ = std::move(parsed.log.points);
  } else {
    log.fd = write_atomically_keep_open(file_, header.dump() + "\n");  // created anew, never through a link
  }
  fd_ = log.release();
}

RecordWriter::~RecordWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void RecordWriter::append(const std::vector<Record>& point_records) {
  write_all(fd_, records_line(point_records, check_key_, timing_), file_);
}

}  // namespace tailsim
