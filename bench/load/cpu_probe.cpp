// cpu_probe: how fast this core is, moment by moment. Every millisecond it times one fixed unit
// of work (integer arithmetic over a 256 KiB buffer, about 17 us on an idle core of the
// reference VM) and sleeps; at the end it reports, per 50 ms window, the median time of the
// units in it, and the share of windows whose median is more than 1.4 times the run's
// `--reference` (or, without one, the run's own median).
//
// On a virtual machine the cores the guest sees are not the host's: another tenant, or the
// other vCPU of the same guest, can take a share of the physical core for a while. The load
// benchmark's latency tail comes from such moments (bench/README.md, "Session 6"), and
// bench/load/neighbour_check.sh uses this probe to show them: idle, next to a CPU burn on the
// other core, and next to a write-and-fdatasync loop.
//
//   cpu_probe --seconds 12 [--reference US] [--timeline FILE]
//
// Prints one line: `CPU_PROBE units=N median_us=M p99_us=P max_us=X windows=W slow_windows=S
// slow_pct=F reference_us=R`. Exits 2 on bad arguments.
#include <time.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace {

double monotonic_seconds() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// One unit of work: a dependent chain of multiply-adds reading and writing a buffer that fits
// in a core's L2 cache, so that it measures the core (and its caches), not memory.
std::uint64_t work_unit(std::vector<std::uint64_t>& buffer) {
  const std::size_t mask = buffer.size() - 1;
  std::uint64_t x = 1;
  for (int round = 0; round < 2; ++round) {
    for (std::size_t i = 0; i < buffer.size(); i += 8) {
      buffer[i] += x;
      x = x * 6364136223846793005ULL + buffer[(i * 7) & mask];
    }
  }
  return x;
}

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Times a fixed unit of work every millisecond, to see when this core slows down"};
  double seconds = 10;
  double reference_us = 0;
  std::string timeline;
  app.add_option("--seconds", seconds, "how long to run")->check(CLI::PositiveNumber);
  app.add_option("--reference", reference_us,
                 "a unit's time on this core when idle (us; default: this run's median)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--timeline", timeline, "write \"MONOTONIC_S UNIT_US\" per unit to this file");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  std::vector<std::uint64_t> buffer(std::size_t{1} << 15);  // 256 KiB
  std::vector<std::pair<double, double>> units;             // (start, duration in us)
  units.reserve(static_cast<std::size_t>(seconds * 1100));
  volatile std::uint64_t sink = 0;
  const double end = monotonic_seconds() + seconds;
  const timespec pause{0, 1'000'000};
  for (double now = monotonic_seconds(); now < end; now = monotonic_seconds()) {
    sink = sink + work_unit(buffer);
    units.emplace_back(now, (monotonic_seconds() - now) * 1e6);
    nanosleep(&pause, nullptr);
  }
  if (units.empty()) return 2;

  std::vector<double> durations;
  durations.reserve(units.size());
  for (const auto& u : units) durations.push_back(u.second);
  std::vector<double> sorted = durations;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted[sorted.size() / 2];
  const double p99 = sorted[std::min(sorted.size() - 1, sorted.size() * 99 / 100)];
  const double reference = reference_us > 0 ? reference_us : median;

  std::map<std::int64_t, std::vector<double>> windows;  // 50 ms windows from the first unit
  for (const auto& [start, us] : units) {
    windows[static_cast<std::int64_t>((start - units.front().first) * 20)].push_back(us);
  }
  std::size_t slow = 0;
  for (auto& [index, in_window] : windows) {
    if (median_of(in_window) > 1.4 * reference) ++slow;
  }

  if (!timeline.empty()) {
    if (std::FILE* f = std::fopen(timeline.c_str(), "w")) {
      for (const auto& [start, us] : units) std::fprintf(f, "%.6f %.1f\n", start, us);
      std::fclose(f);
    }
  }
  std::printf(
      "CPU_PROBE units=%zu median_us=%.1f p99_us=%.1f max_us=%.1f windows=%zu slow_windows=%zu "
      "slow_pct=%.1f reference_us=%.1f\n",
      units.size(), median, p99, sorted.back(), windows.size(), slow,
      100.0 * static_cast<double>(slow) / static_cast<double>(windows.size()), reference);
  return 0;
}
