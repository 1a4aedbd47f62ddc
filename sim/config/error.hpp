// Input errors carry where the bad input is (file and JSON path); only main prints them (exit code 2).
#pragma once
#include <stdexcept>
#include <string>

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

}  // namespace tailsim
