#include "storage/rocksdb_logger.h"

#include <cstdarg>
#include <cstdio>

#include "spdlog/spdlog.h"

namespace reclaimfs::storage {
namespace {

class SpdlogLogger : public rocksdb::Logger {
 public:
  explicit SpdlogLogger(rocksdb::InfoLogLevel level) : rocksdb::Logger(level) {}

  using rocksdb::Logger::Logv;
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char line[1024];
    std::vsnprintf(line, sizeof(line), format, ap);
    if (level == rocksdb::InfoLogLevel::FATAL_LEVEL) {
      spdlog::error("rocksdb: {}", line);
    } else {
      spdlog::debug("rocksdb: {}", line);
    }
  }
};

}  // namespace

std::shared_ptr<rocksdb::Logger> NewRocksDbLogger(rocksdb::InfoLogLevel level) {
  return std::make_shared<SpdlogLogger>(level);
}

}  // namespace reclaimfs::storage
