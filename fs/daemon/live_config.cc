// LiveConfig: builds every change on a copy with config.h's parser and
// validation, then hands it to the applier and makes it current.
#include "fs/daemon/live_config.h"

#include <chrono>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace reclaimfs::fs {

namespace {

std::string NowText() {
  const std::time_t now = std::time(nullptr);
  std::tm tm;
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

std::string_view OriginName(ConfigOrigin origin) {
  switch (origin) {
    case ConfigOrigin::kDefault: return "default";
    case ConfigOrigin::kFile: return "file";
    case ConfigOrigin::kOption: return "-o";
    case ConfigOrigin::kLive: return "live";
  }
  return "default";
}

LiveConfig::LiveConfig(std::optional<std::string> file, Overrides overrides)
    : file_(std::move(file)), overrides_(std::move(overrides)) {}

absl::StatusOr<LiveConfig::State> LiveConfig::Build() const {
  State next;
  if (file_) {
    std::vector<std::string> keys;
    if (absl::Status s = ApplyConfigFile(&next.config, *file_, &keys); !s.ok()) return s;
    for (const std::string& key : keys) next.origins[key] = ConfigOrigin::kFile;
  }
  for (const auto& [key, value] : overrides_) {
    if (absl::Status s = SetConfigValue(&next.config, key, value); !s.ok()) return s;
    next.origins[key] = ConfigOrigin::kOption;
  }
  if (absl::Status s = ValidateConfig(next.config); !s.ok()) return s;
  return next;
}

absl::Status LiveConfig::Load() {
  std::lock_guard a(apply_mu_);
  absl::StatusOr<State> built = Build();
  if (!built.ok()) return built.status();
  std::lock_guard l(mu_);
  state_ = std::move(*built);
  return absl::OkStatus();
}

void LiveConfig::SetApplier(Applier applier) {
  std::lock_guard a(apply_mu_);
  applier_ = std::move(applier);
}

void LiveConfig::Commit(State next) {
  const Config before = current();
  if (applier_) applier_(before, next.config);
  std::lock_guard l(mu_);
  state_ = std::move(next);
}

absl::Status LiveConfig::Set(const std::vector<std::string>& assignments) {
  if (assignments.empty()) return absl::InvalidArgumentError("set: expected key=value ...");
  std::lock_guard a(apply_mu_);
  State next;
  {
    std::lock_guard l(mu_);
    next = state_;
  }
  for (const std::string& word : assignments) {
    const size_t eq = word.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("set: expected key=value, got '", word, "'"));
    }
    const std::string key = word.substr(0, eq);
    if (!IsConfigKey(key)) return SetConfigValue(&next.config, key, "");  // the parser's message
    if (!IsLiveConfigKey(key)) {
      return absl::FailedPreconditionError(
          absl::StrCat("config: ", key, ": cannot change while mounted (needs a remount)"));
    }
    if (absl::Status s = SetConfigValue(&next.config, key, word.substr(eq + 1)); !s.ok()) return s;
    next.origins[key] = ConfigOrigin::kLive;
  }
  if (absl::Status s = ValidateConfig(next.config); !s.ok()) return s;
  Commit(std::move(next));
  return absl::OkStatus();
}

absl::Status LiveConfig::Reload(std::vector<std::string>* kept) {
  std::lock_guard a(apply_mu_);
  absl::StatusOr<State> built = Build();
  if (!built.ok()) {
    std::lock_guard l(mu_);
    reload_status_ = absl::StrCat("failed at ", NowText(), ", nothing changed: ", built.status().message());
    return built.status();
  }
  State next = std::move(*built);
  std::vector<std::string> unchanged;
  {
    std::lock_guard l(mu_);
    // Keys that need a remount keep their running value and origin.
    for (std::string_view key : ConfigKeys()) {
      if (IsLiveConfigKey(key)) continue;
      const std::string was = ConfigValueText(state_.config, key);
      if (ConfigValueText(next.config, key) == was) continue;
      unchanged.emplace_back(key);
      if (absl::Status s = SetConfigValue(&next.config, key, was); !s.ok()) return s;
      if (auto it = state_.origins.find(key); it != state_.origins.end()) {
        next.origins[std::string(key)] = it->second;
      } else {
        next.origins.erase(std::string(key));
      }
    }
  }
  Commit(std::move(next));
  std::lock_guard l(mu_);
  reload_status_ = absl::StrCat("ok at ", NowText());
  if (!unchanged.empty()) {
    absl::StrAppend(&reload_status_, "; kept until a remount: ", absl::StrJoin(unchanged, ", "));
  }
  if (kept != nullptr) *kept = std::move(unchanged);
  return absl::OkStatus();
}

Config LiveConfig::current() const {
  std::lock_guard l(mu_);
  return state_.config;
}

std::string LiveConfig::Text() const {
  std::lock_guard l(mu_);
  std::string out;
  for (std::string_view key : ConfigKeys()) {
    auto it = state_.origins.find(key);
    const ConfigOrigin origin = it == state_.origins.end() ? ConfigOrigin::kDefault : it->second;
    absl::StrAppend(&out, std::string(key), " = ", ConfigValueText(state_.config, key), "  # ",
                    std::string(OriginName(origin)),
                    IsLiveConfigKey(key) ? "" : ", needs a remount", "\n");
  }
  absl::StrAppend(&out, "# config file: ", file_ ? *file_ : "none", "\n");
  absl::StrAppend(&out, "# last reload: ", reload_status_, "\n");
  return out;
}

}  // namespace reclaimfs::fs
