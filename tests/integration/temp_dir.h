#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace alertrouter::integration {

// A fresh directory under $TMPDIR (or /tmp) for one test's files: configs, child process logs,
// Alertmanager storage. Removed with everything in it by the destructor, unless the test failed
// or ALERTROUTER_KEEP_TEMP is set in the environment (then it is kept and its path printed, so
// the logs can be read). Not thread-safe; owned by one test.
class temp_dir {
 public:
  // Creates the directory, named after `prefix` and a random suffix. Throws std::runtime_error
  // when it cannot be created.
  explicit temp_dir(std::string_view prefix = "alertrouter-it");
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // Writes `content` to path()/name (replacing it) and returns the full path. Throws
  // std::runtime_error on I/O failure.
  std::filesystem::path write(std::string_view name, std::string_view content) const;

 private:
  std::filesystem::path path_;
};

// The whole content of `file`; empty if it cannot be read.
std::string read_file(const std::filesystem::path& file);

}  // namespace alertrouter::integration
