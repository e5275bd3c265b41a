// Config keys: a table of (name, how to set it, how to print it). Each key's
// setter accepts both a TOML value and the text of an `-o key=value`
// override, so the file and the command line share one set of rules.
#include "fs/daemon/config.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <thread>
#include <variant>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "fs/daemon/listen_address.h"
#include <toml++/toml.h>

namespace reclaimfs::fs {

uint32_t DefaultRequestThreads() {
  return std::clamp<uint32_t>(std::thread::hardware_concurrency(), 2, 16);
}

namespace {

// A value as it arrives: from TOML (typed) or from the command line (text).
using Value = std::variant<int64_t, double, bool, std::string>;

// absl here has its own string_view; std::string_view needs converting.
absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }
std::string_view SV(absl::string_view s) { return std::string_view(s.data(), s.size()); }

absl::Status KeyError(std::string_view key, std::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("config: ", AV(key), ": ", AV(problem)));
}

std::string Describe(const Value& v) {
  struct {
    std::string operator()(int64_t i) { return absl::StrCat(i); }
    std::string operator()(double d) { return absl::StrCat(d); }
    std::string operator()(bool b) { return b ? "true" : "false"; }
    std::string operator()(const std::string& s) { return absl::StrCat("'", s, "'"); }
  } visitor;
  return std::visit(visitor, v);
}

std::string FormatSize(uint64_t bytes) {
  static constexpr std::pair<uint64_t, const char*> kUnits[] = {
      {1ull << 40, "T"}, {1ull << 30, "G"}, {1ull << 20, "M"}, {1ull << 10, "K"}};
  for (const auto& [unit, suffix] : kUnits) {
    if (bytes != 0 && bytes % unit == 0) return absl::StrCat(bytes / unit, suffix);
  }
  return absl::StrCat(bytes);
}

struct KeySpec {
  std::string_view name;
  std::function<absl::Status(Config*, const Value&)> set;
  std::function<std::string(const Config&)> show;
  bool boolean = false;
  bool live = false;  // may change while mounted (reclaimfs-ctl set, SIGHUP)
};

KeySpec Live(KeySpec spec) {
  spec.live = true;
  return spec;
}

KeySpec SizeKey(std::string_view name, uint64_t Config::*field, uint64_t min, uint64_t max) {
  KeySpec spec;
  spec.name = name;
  spec.set = [name, field, min, max](Config* c, const Value& v) -> absl::Status {
    uint64_t bytes = 0;
    if (const auto* i = std::get_if<int64_t>(&v)) {
      if (*i < 0) return KeyError(name, absl::StrCat("must not be negative (got ", *i, ")"));
      bytes = static_cast<uint64_t>(*i);
    } else if (const auto* s = std::get_if<std::string>(&v)) {
      auto parsed = ParseSize(*s);
      if (!parsed.ok()) return KeyError(name, SV(parsed.status().message()));
      bytes = *parsed;
    } else {
      return KeyError(name, absl::StrCat("expected a size such as 64M, got ", Describe(v)));
    }
    if (bytes < min) {
      return KeyError(name, absl::StrCat("must be at least ", FormatSize(min), " (got ", FormatSize(bytes), ")"));
    }
    if (bytes > max) {
      return KeyError(name, absl::StrCat("must be at most ", FormatSize(max), " (got ", FormatSize(bytes), ")"));
    }
    c->*field = bytes;
    return absl::OkStatus();
  };
  spec.show = [field](const Config& c) { return FormatSize(c.*field); };
  return spec;
}

// A real number in an interval; `open_low`/`open_high` exclude the ends.
KeySpec FractionKey(std::string_view name, double Config::*field, double low, bool open_low, double high,
                    bool open_high) {
  KeySpec spec;
  spec.name = name;
  spec.set = [=](Config* c, const Value& v) -> absl::Status {
    double d = 0;
    if (const auto* f = std::get_if<double>(&v)) {
      d = *f;
    } else if (const auto* i = std::get_if<int64_t>(&v)) {
      d = static_cast<double>(*i);
    } else if (const auto* s = std::get_if<std::string>(&v)) {
      if (!absl::SimpleAtod(*s, &d)) return KeyError(name, absl::StrCat("not a number: ", Describe(v)));
    } else {
      return KeyError(name, absl::StrCat("expected a number, got ", Describe(v)));
    }
    const bool below = open_low ? !(d > low) : !(d >= low);
    const bool above = open_high ? !(d < high) : !(d <= high);
    if (std::isnan(d) || below || above) {
      return KeyError(name, absl::StrFormat("must be in %c%g, %g%c (got %g)", open_low ? '(' : '[', low, high,
                                            open_high ? ')' : ']', d));
    }
    c->*field = d;
    return absl::OkStatus();
  };
  spec.show = [field](const Config& c) { return absl::StrCat(c.*field); };
  return spec;
}

KeySpec UintKey(std::string_view name, uint32_t Config::*field, uint32_t min, uint32_t max) {
  KeySpec spec;
  spec.name = name;
  spec.set = [=](Config* c, const Value& v) -> absl::Status {
    int64_t n = 0;
    if (const auto* i = std::get_if<int64_t>(&v)) {
      n = *i;
    } else if (const auto* s = std::get_if<std::string>(&v)) {
      if (!absl::SimpleAtoi(*s, &n)) return KeyError(name, absl::StrCat("not an integer: ", Describe(v)));
    } else {
      return KeyError(name, absl::StrCat("expected an integer, got ", Describe(v)));
    }
    if (n < static_cast<int64_t>(min) || n > static_cast<int64_t>(max)) {
      return KeyError(name, absl::StrCat("must be in ", min, "..", max, " (got ", n, ")"));
    }
    c->*field = static_cast<uint32_t>(n);
    return absl::OkStatus();
  };
  spec.show = [field](const Config& c) { return absl::StrCat(c.*field); };
  return spec;
}

KeySpec BoolKey(std::string_view name, bool Config::*field) {
  KeySpec spec;
  spec.name = name;
  spec.boolean = true;
  spec.set = [=](Config* c, const Value& v) -> absl::Status {
    if (const auto* b = std::get_if<bool>(&v)) {
      c->*field = *b;
      return absl::OkStatus();
    }
    if (const auto* s = std::get_if<std::string>(&v)) {
      bool b = false;
      if (absl::SimpleAtob(*s, &b)) {  // true/false, yes/no, t/f, y/n, 1/0
        c->*field = b;
        return absl::OkStatus();
      }
      std::string lower = absl::AsciiStrToLower(*s);
      if (lower == "on" || lower == "off") {
        c->*field = lower == "on";
        return absl::OkStatus();
      }
    }
    return KeyError(name, absl::StrCat("expected true or false, got ", Describe(v)));
  };
  spec.show = [field](const Config& c) { return c.*field ? "true" : "false"; };
  return spec;
}

const std::vector<KeySpec>& Specs() {
  static const auto* specs = [] {
    constexpr uint64_t kMiB = 1ull << 20;
    constexpr uint64_t kMaxBudget = 1ull << 50;
    auto* v = new std::vector<KeySpec>;
    v->push_back(Live(SizeKey("cache_budget", &Config::cache_budget, kMiB, kMaxBudget)));
    v->push_back(Live(SizeKey("meta_budget", &Config::meta_budget, kMiB, kMaxBudget)));
    v->push_back(Live(FractionKey("watermark_min", &Config::watermark_min, 0, false, 1, true)));
    v->push_back(Live(FractionKey("watermark_low", &Config::watermark_low, 0, false, 1, true)));
    v->push_back(Live(FractionKey("watermark_high", &Config::watermark_high, 0, false, 1, true)));
    v->push_back(Live(FractionKey("dirty_background_ratio", &Config::dirty_background_ratio, 0, true, 1, false)));
    v->push_back(Live(FractionKey("dirty_ratio", &Config::dirty_ratio, 0, true, 1, false)));
    v->push_back(Live(UintKey("dirty_expire_ms", &Config::dirty_expire_ms, 1, 24 * 3600 * 1000)));
    v->push_back(Live(UintKey("writeback_interval_ms", &Config::writeback_interval_ms, 1, 3600 * 1000)));
    v->push_back(Live(UintKey("flusher_threads", &Config::flusher_threads, 1, 64)));
    v->push_back(UintKey("uring_queue_depth", &Config::uring_queue_depth, 1, 4096));
    v->push_back(Live(SizeKey("readahead", &Config::readahead, 0, 64 * kMiB)));

    KeySpec shrinker;
    shrinker.name = "shrinker_mode";
    shrinker.set = [](Config* c, const Value& v) -> absl::Status {
      const auto* s = std::get_if<std::string>(&v);
      if (s != nullptr && *s == "nonblocking") {
        c->shrinker_mode = ShrinkerMode::kNonBlocking;
      } else if (s != nullptr && *s == "blocking") {
        c->shrinker_mode = ShrinkerMode::kBlocking;
      } else {
        return KeyError("shrinker_mode", absl::StrCat("expected \"nonblocking\" or \"blocking\", got ", Describe(v)));
      }
      return absl::OkStatus();
    };
    shrinker.show = [](const Config& c) {
      return std::string(c.shrinker_mode == ShrinkerMode::kBlocking ? "blocking" : "nonblocking");
    };
    v->push_back(std::move(shrinker));

    v->push_back(BoolKey("kernel_cache", &Config::kernel_cache));
    v->push_back(BoolKey("fault_injection", &Config::fault_injection));
    v->push_back(UintKey("max_background", &Config::max_background, 1, 65535));
    v->push_back(UintKey("request_threads", &Config::request_threads, 1, 256));
    v->push_back(UintKey("blocking_threads", &Config::blocking_threads, 1, 256));
    KeySpec transport;
    transport.name = "fuse_transport";
    transport.set = [](Config* c, const Value& v) -> absl::Status {
      const auto* s = std::get_if<std::string>(&v);
      if (s != nullptr && (*s == "auto" || *s == "uring" || *s == "dev")) {
        c->fuse_transport = *s;
        return absl::OkStatus();
      }
      return KeyError("fuse_transport", absl::StrCat("expected \"auto\", \"uring\" or \"dev\", got ", Describe(v)));
    };
    transport.show = [](const Config& c) { return c.fuse_transport; };
    v->push_back(std::move(transport));
    v->push_back(UintKey("fuse_uring_depth", &Config::fuse_uring_depth, 1, 1024));
    v->push_back(Live(FractionKey("inode_cache_fraction", &Config::inode_cache_fraction, 0, true, 1, false)));
    v->push_back(UintKey("lock_wait_ms", &Config::lock_wait_ms, 0, 3600 * 1000));

    KeySpec log_level;
    log_level.name = "log_level";
    log_level.set = [](Config* c, const Value& v) -> absl::Status {
      static constexpr std::string_view kLevels[] = {"trace", "debug", "info", "warn",
                                                     "warning", "error", "critical", "off"};
      if (const auto* s = std::get_if<std::string>(&v)) {
        const std::string lower = absl::AsciiStrToLower(*s);
        for (std::string_view level : kLevels) {
          if (lower == level) {
            c->log_level = lower == "warning" ? "warn" : lower;
            return absl::OkStatus();
          }
        }
      }
      return KeyError("log_level",
                      absl::StrCat("expected trace, debug, info, warn, error, critical or off, got ", Describe(v)));
    };
    log_level.show = [](const Config& c) { return c.log_level; };
    log_level.live = true;
    v->push_back(std::move(log_level));

    KeySpec listen;
    listen.name = "metrics_listen";
    listen.set = [](Config* c, const Value& v) -> absl::Status {
      const auto* s = std::get_if<std::string>(&v);
      if (s == nullptr) return KeyError("metrics_listen", absl::StrCat("expected \"ADDRESS:PORT\", got ", Describe(v)));
      if (!s->empty() && *s != "off") {
        if (auto a = ParseListenAddress(*s); !a.ok()) return KeyError("metrics_listen", SV(a.status().message()));
      }
      c->metrics_listen = *s == "off" ? "" : *s;
      return absl::OkStatus();
    };
    listen.show = [](const Config& c) { return c.metrics_listen.empty() ? std::string("off") : c.metrics_listen; };
    v->push_back(std::move(listen));

    v->push_back(BoolKey("host_pressure", &Config::host_pressure));
    v->push_back(Live(SizeKey("host_pressure_floor", &Config::host_pressure_floor, kMiB, kMaxBudget)));
    v->push_back(Live(FractionKey("host_pressure_threshold", &Config::host_pressure_threshold, 0, true, 100, false)));
    KeySpec pressure_file;
    pressure_file.name = "host_pressure_file";
    pressure_file.set = [](Config* c, const Value& v) -> absl::Status {
      const auto* s = std::get_if<std::string>(&v);
      if (s == nullptr) return KeyError("host_pressure_file", absl::StrCat("expected a path, got ", Describe(v)));
      if (!s->empty() && s->front() != '/') {
        return KeyError("host_pressure_file", absl::StrCat("expected an absolute path, got ", Describe(v)));
      }
      c->host_pressure_file = *s;
      return absl::OkStatus();
    };
    pressure_file.show = [](const Config& c) {
      return c.host_pressure_file.empty() ? std::string("\"\"") : c.host_pressure_file;
    };
    v->push_back(std::move(pressure_file));
    return v;
  }();
  return *specs;
}

const KeySpec* FindSpec(std::string_view key) {
  for (const KeySpec& spec : Specs()) {
    if (spec.name == key) return &spec;
  }
  return nullptr;
}

absl::Status UnknownKey(std::string_view key) {
  return absl::InvalidArgumentError(absl::StrCat("config: unknown key '", AV(key), "'"));
}

}  // namespace

const std::vector<std::string_view>& ConfigKeys() {
  static const auto* keys = [] {
    auto* v = new std::vector<std::string_view>;
    for (const KeySpec& spec : Specs()) v->push_back(spec.name);
    return v;
  }();
  return *keys;
}

bool IsConfigKey(std::string_view key) { return FindSpec(key) != nullptr; }

bool IsLiveConfigKey(std::string_view key) {
  const KeySpec* spec = FindSpec(key);
  return spec != nullptr && spec->live;
}

std::string ConfigValueText(const Config& config, std::string_view key) {
  const KeySpec* spec = FindSpec(key);
  return spec != nullptr ? spec->show(config) : std::string();
}

bool IsBooleanConfigKey(std::string_view key) {
  const KeySpec* spec = FindSpec(key);
  return spec != nullptr && spec->boolean;
}

absl::Status SetConfigValue(Config* config, std::string_view key, std::string_view value) {
  const KeySpec* spec = FindSpec(key);
  if (spec == nullptr) return UnknownKey(key);
  return spec->set(config, std::string(value));
}

absl::Status ApplyConfigToml(Config* config, std::string_view toml_text, std::string_view origin,
                             std::vector<std::string>* keys_set) {
  toml::table table;
  try {
    table = toml::parse(toml_text, std::string(origin));
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return absl::InvalidArgumentError(
        absl::StrCat("config: ", AV(origin), ":", where.line, ":", where.column, ": ", AV(e.description())));
  }
  // Apply onto a copy so a bad file leaves `config` untouched.
  Config updated = *config;
  std::vector<std::string> set;
  for (const auto& [name, node] : table) {
    const std::string_view key = name.str();
    const KeySpec* spec = FindSpec(key);
    if (spec == nullptr) return UnknownKey(key);
    Value value;
    if (auto i = node.value_exact<int64_t>()) {
      value = *i;
    } else if (auto d = node.value_exact<double>()) {
      value = *d;
    } else if (auto b = node.value_exact<bool>()) {
      value = *b;
    } else if (auto s = node.value_exact<std::string>()) {
      value = *s;
    } else {
      return KeyError(key, "expected a number, string or boolean (the file is a flat list of keys)");
    }
    if (absl::Status s = spec->set(&updated, value); !s.ok()) return s;
    set.emplace_back(key);
  }
  *config = std::move(updated);
  if (keys_set != nullptr) *keys_set = std::move(set);
  return absl::OkStatus();
}

absl::Status ApplyConfigFile(Config* config, const std::string& path, std::vector<std::string>* keys_set) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("config: cannot read ", path, ": ", std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("config: error reading ", path));
  return ApplyConfigToml(config, text.str(), path, keys_set);
}

absl::Status ValidateConfig(const Config& c) {
  if (!(c.watermark_min < c.watermark_low)) {
    return KeyError("watermark_low", absl::StrCat("must be greater than watermark_min (", c.watermark_min,
                                                  "), got ", c.watermark_low));
  }
  if (!(c.watermark_low < c.watermark_high)) {
    return KeyError("watermark_high", absl::StrCat("must be greater than watermark_low (", c.watermark_low,
                                                   "), got ", c.watermark_high));
  }
  if (!(c.dirty_background_ratio < c.dirty_ratio)) {
    return KeyError("dirty_ratio", absl::StrCat("must be greater than dirty_background_ratio (",
                                                c.dirty_background_ratio, "), got ", c.dirty_ratio));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> ParseSize(std::string_view text) {
  absl::string_view s = absl::StripAsciiWhitespace(AV(text));
  const std::string original(s);
  size_t digits = 0;
  while (digits < s.size() && absl::ascii_isdigit(static_cast<unsigned char>(s[digits]))) ++digits;
  if (digits == 0) return absl::InvalidArgumentError(absl::StrCat("not a size: '", original, "'"));
  uint64_t number = 0;
  if (!absl::SimpleAtoi(s.substr(0, digits), &number)) {
    return absl::InvalidArgumentError(absl::StrCat("size out of range: '", original, "'"));
  }
  std::string suffix = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(s.substr(digits)));
  if (suffix.size() >= 2 && suffix.substr(suffix.size() - 2) == "IB") {
    suffix.resize(suffix.size() - 2);
  } else if (suffix.size() == 2 && suffix.back() == 'B') {
    suffix.resize(1);
  }
  int shift = 0;
  if (suffix.empty() || suffix == "B") {
    shift = 0;
  } else if (suffix == "K") {
    shift = 10;
  } else if (suffix == "M") {
    shift = 20;
  } else if (suffix == "G") {
    shift = 30;
  } else if (suffix == "T") {
    shift = 40;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown size suffix in '", original, "' (use K, M, G or T)"));
  }
  if (shift > 0 && number > (std::numeric_limits<uint64_t>::max() >> shift)) {
    return absl::InvalidArgumentError(absl::StrCat("size out of range: '", original, "'"));
  }
  return number << shift;
}

void ApplyConfigToOptions(const Config& c, FilesystemOptions* o) {
  o->memory.budget_bytes = c.cache_budget;
  o->memory.watermarks.min = c.watermark_min;
  o->memory.watermarks.low = c.watermark_low;
  o->memory.watermarks.high = c.watermark_high;
  o->meta.block_cache_bytes = c.meta_budget / 2;
  o->meta.memtable_bytes = c.meta_budget - c.meta_budget / 2;
  o->meta.lock_wait_ms = static_cast<int>(c.lock_wait_ms);
  o->uring.queue_depth = c.uring_queue_depth;
  o->uring.lock_wait_ms = static_cast<int>(c.lock_wait_ms);
  o->data.dirty_background_ratio = c.dirty_background_ratio;
  o->data.dirty_ratio = c.dirty_ratio;
  o->data.dirty_expire_ms = c.dirty_expire_ms;
  o->data.writeback_interval_ms = c.writeback_interval_ms;
  o->data.flusher_threads = c.flusher_threads;
  o->data.readahead_bytes = c.readahead;
  o->data.shrinker_mode = c.shrinker_mode;
  o->kernel_cache = c.kernel_cache;
  o->fault_injection = c.fault_injection;
  o->inode_cache_fraction = c.inode_cache_fraction;
}

std::string ConfigText(const Config& config) {
  std::string out;
  for (const KeySpec& spec : Specs()) absl::StrAppend(&out, AV(spec.name), " = ", spec.show(config), "\n");
  return out;
}

}  // namespace reclaimfs::fs
