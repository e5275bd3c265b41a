// The configuration of a running daemon: the values in effect, where each
// came from (default, file, -o, live), and the outcome of the last reload.
// Changes arrive as `reclaimfs-ctl set` (Set) and SIGHUP (Reload); both
// build the whole new configuration with config.h's parser and validation
// first, so a bad value or file changes nothing. Set refuses keys that need
// a remount; Reload keeps their running values and names them.
//
// A successful change is handed to the applier (with the previous and the
// new configuration) before it becomes current; changes are serialised, so
// the applier sees them in order. Any thread; Text never waits for an
// applier that is running.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fs/daemon/config.h"

namespace reclaimfs::fs {

enum class ConfigOrigin { kDefault, kFile, kOption, kLive };
std::string_view OriginName(ConfigOrigin origin);  // "default", "file", "-o", "live"

class LiveConfig {
 public:
  using Overrides = std::vector<std::pair<std::string, std::string>>;
  using Applier = std::function<void(const Config& before, const Config& after)>;

  // file: the config file, if any (read at Load and Reload); overrides: the
  // `-o key=value` pairs, which win over the file.
  LiveConfig(std::optional<std::string> file, Overrides overrides);

  // Startup: defaults, then the file, then the overrides, validated.
  absl::Status Load();
  void SetApplier(Applier applier);

  // Words "key=value": all are checked, then applied together. Errors name
  // the key ("config: cache_budget: ...", "... needs a remount").
  absl::Status Set(const std::vector<std::string>& assignments);
  // Re-reads the file (defaults, file, overrides; live values are replaced).
  // On error nothing changes and the error is remembered for Text().
  // `kept` receives the keys that changed in the file but need a remount.
  absl::Status Reload(std::vector<std::string>* kept = nullptr);

  Config current() const;
  // "key = value  # origin" for every key, then the last reload's outcome.
  std::string Text() const;

 private:
  struct State {
    Config config;
    std::map<std::string, ConfigOrigin, std::less<>> origins;  // absent: default
  };
  absl::StatusOr<State> Build() const;  // defaults + file + overrides
  void Commit(State next);               // apply_mu_ held

  const std::optional<std::string> file_;
  const Overrides overrides_;

  std::mutex apply_mu_;  // serialises changes; held across the applier
  Applier applier_;

  mutable std::mutex mu_;  // leaf: guards the fields below
  State state_;
  std::string reload_status_ = "none";
};

}  // namespace reclaimfs::fs
