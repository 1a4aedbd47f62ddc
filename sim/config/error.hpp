// Input errors carry where the bad input is (file and JSON path); I/O errors the file tailsim failed to write
// or create. Only main prints them (exit codes 2 and 74).
#pragma once
#include <stdexcept>
#include <string>
#include <string_view>

namespace tailsim {

class InputError : public std::runtime_error {
 public:
  InputError(std::string file, std::string path, const std::string& message)
      : std::runtime_error(format(file, path, message)),
        file_(std::move(file)),
        path_(std::move(path)),
        message_(message) {}
  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }
  const std::string& message() const { return message_; }  // without the file and path

 private:
  static std::string format(const std::string& file, const std::string& path, const std::string& message) {
    std::string out;
    if (!file.empty()) out += file + ": ";
    if (!path.empty()) out += path + ": ";
    return out + message;
  }
  std::string file_;
  std::string path_;
  std::string message_;
};

// A key of an object that nobody reads (JsonReader::finish): path() is the object's, key() the key. A caller
// that put the key there (a sweep axis) may blame the error on itself.
class UnknownKeyError : public InputError {
 public:
  UnknownKeyError(std::string file, std::string path, std::string key, const std::string& message)
      : InputError(std::move(file), std::move(path), message), key_(std::move(key)) {}
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

// A failure to write or create an output file that is not the user's doing (disk full, I/O error, a
// read-only file system found mid-run): exit code 74 (EX_IOERR). `error_number`: the errno, 0 if none.
class IoError : public std::runtime_error {
 public:
  IoError(std::string path, const std::string& message, int error_number = 0);
  const std::string& path() const { return path_; }
  int error_number() const { return error_number_; }

 private:
  std::string path_;
  int error_number_;
};

// A piece of user input for a message: in single quotes, control bytes (and DEL) as \xNN, at most about
// 80 characters; a longer one ends in "...' (N bytes)".
std::string quote_input(std::string_view text);

}  // namespace tailsim
