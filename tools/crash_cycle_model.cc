// crash_cycle: the expected state of the store; see crash_cycle_model.h.
#include "tools/crash_cycle_model.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace crash_cycle {
namespace {

constexpr const char* kVariantNames[] = {"tmp-rename", "append", "truncate", "punch",
                                         "link",       "xattr",  "junk",     "rotate"};

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out.empty() ? "-" : out;
}

}  // namespace

const char* VariantName(Variant v) { return kVariantNames[static_cast<int>(v)]; }

std::optional<Variant> ParseVariant(const std::string& name) {
  for (int i = 0; i <= static_cast<int>(Variant::kJunk); ++i) {
    if (name == kVariantNames[i]) return static_cast<Variant>(i);
  }
  return std::nullopt;
}

std::string Xattr::Value() const {
  std::string v(len, '\0');
  FillStream(seed, 0, v);
  return v;
}

std::string FileState::Encode() const {
  std::string out = content.Encode();
  if (xattr) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " xattr=%016" PRIx64 "+%u", xattr->seed, xattr->len);
    out += buf;
  }
  return out;
}

std::string Inode::History() const {
  std::string out = std::string("made by ") + VariantName(made_by) + " in cycle " + std::to_string(made_cycle);
  if (born && (last_by != made_by || last_cycle != made_cycle)) {
    out += std::string(", last change ") + VariantName(last_by) + " in cycle " + std::to_string(last_cycle);
  }
  if (pending) {
    out += std::string(", pending ") + VariantName(pending->variant) + " from cycle " +
           std::to_string(pending->cycle);
  }
  if (!how.empty()) out += "; last written " + how;
  return out;
}

Model::Model(const std::string& journal_path) {
  journal_fd_ = open(journal_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (journal_fd_ < 0) {
    throw std::runtime_error("cannot create the journal " + journal_path + ": " + strerror(errno));
  }
}

Model::~Model() {
  if (journal_fd_ >= 0) close(journal_fd_);
}

void Model::set_cycle(unsigned cycle) {
  std::lock_guard lock(mu_);
  cycle_ = cycle;
}

void Model::Note(const std::string& line) {
  std::lock_guard lock(mu_);
  WriteLine(line);
}

void Model::WriteLine(std::string line) {
  line = "c" + std::to_string(cycle_) + " " + line + "\n";
  if (write(journal_fd_, line.data(), line.size()) < 0) std::perror("crash_cycle: journal write");
}

void Model::Journal(const char* event, const Inode& ino) {
  std::string line = std::string(event) + " ino=" + std::to_string(ino.id) + " names=" + JoinNames(ino.names);
  if (ino.born) line += " " + ino.committed.Encode();
  if (ino.pending) {
    const Pending& p = *ino.pending;
    line += std::string(" pending=") + VariantName(p.variant) + "@c" + std::to_string(p.cycle);
    if (!p.add_name.empty()) line += " add=" + p.add_name;
    if (!p.remove_name.empty()) line += " remove=" + p.remove_name;
    if (!p.how.empty()) line += " how=" + p.how;
    line += " new:" + p.state.Encode();
  }
  WriteLine(std::move(line));
}

std::optional<Lease> Model::AcquireRandom(std::mt19937_64& rng) {
  std::lock_guard lock(mu_);
  for (int attempt = 0; attempt < 16 && !born_ids_.empty(); ++attempt) {
    Inode& ino = inodes_.at(born_ids_[rng() % born_ids_.size()]);
    if (ino.busy || ino.pending || ino.names.empty()) continue;
    ino.busy = true;
    return Lease{ino.id, ino.names[rng() % ino.names.size()], ino.committed};
  }
  return std::nullopt;
}

std::optional<Lease> Model::AcquireOldest() {
  std::lock_guard lock(mu_);
  for (const auto& [seq, name] : names_by_age_) {
    Inode& ino = inodes_.at(names_.at(name).first);
    if (ino.busy || ino.pending) continue;
    ino.busy = true;
    return Lease{ino.id, name, ino.committed};
  }
  return std::nullopt;
}

uint64_t Model::BeginCreate(const std::string& name, FileState state, unsigned cycle, std::string how) {
  std::lock_guard lock(mu_);
  Inode& ino = inodes_[next_id_];
  ino.id = next_id_++;
  ino.busy = true;
  ino.made_by = ino.last_by = Variant::kTmpRename;
  ino.made_cycle = ino.last_cycle = cycle;
  Pending& p = ino.pending.emplace();
  p.variant = Variant::kTmpRename;
  p.cycle = cycle;
  p.state = std::move(state);
  p.add_name = name;
  p.how = std::move(how);
  Journal("pending", ino);
  return ino.id;
}

void Model::SetPending(uint64_t id, Pending p) {
  std::lock_guard lock(mu_);
  Inode& ino = inodes_.at(id);
  ino.pending = std::move(p);
  Journal("pending", ino);
}

void Model::AddName(Inode& ino, const std::string& name) {
  const uint64_t seq = next_name_seq_++;
  names_[name] = {ino.id, seq};
  names_by_age_[seq] = name;
  ino.names.push_back(name);
}

void Model::RemoveName(Inode& ino, const std::string& name) {
  auto it = names_.find(name);
  if (it != names_.end()) {
    names_by_age_.erase(it->second.second);
    names_.erase(it);
  }
  std::erase(ino.names, name);
}

void Model::Erase(uint64_t id) {
  auto it = inodes_.find(id);
  if (it == inodes_.end()) return;
  for (const std::string& name : std::vector<std::string>(it->second.names)) RemoveName(it->second, name);
  if (auto b = born_index_.find(id); b != born_index_.end()) {
    const size_t i = b->second;
    born_ids_[i] = born_ids_.back();
    born_index_[born_ids_[i]] = i;
    born_ids_.pop_back();
    born_index_.erase(id);
  }
  inodes_.erase(it);
}

void Model::Commit(uint64_t id) {
  std::lock_guard lock(mu_);
  Inode& ino = inodes_.at(id);
  Pending p = std::move(*ino.pending);
  ino.pending.reset();
  ino.busy = false;
  ino.committed = std::move(p.state);
  if (!p.add_name.empty()) AddName(ino, p.add_name);
  if (!p.remove_name.empty()) RemoveName(ino, p.remove_name);
  ino.last_by = p.variant;
  ino.last_cycle = p.cycle;
  if (!p.how.empty()) ino.how = p.how;
  if (!ino.born) {
    ino.born = true;
    born_index_[id] = born_ids_.size();
    born_ids_.push_back(id);
  }
  Journal("commit", ino);
  if (ino.names.empty()) {
    Journal("gone", ino);
    Erase(id);
  }
}

void Model::Release(uint64_t id) {
  std::lock_guard lock(mu_);
  Inode& ino = inodes_.at(id);
  ino.busy = false;
  if (!ino.born && !ino.pending) Erase(id);
}

void Model::NoteSeed(uint64_t seed, const std::string& where) {
  std::lock_guard lock(mu_);
  seed_owner_[seed] = where;
}

std::string Model::SeedOwner(uint64_t seed) const {
  std::lock_guard lock(mu_);
  auto it = seed_owner_.find(seed);
  return it == seed_owner_.end() ? "" : it->second;
}

std::vector<Inode> Model::Snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<Inode> out;
  out.reserve(inodes_.size());
  for (const auto& [id, ino] : inodes_) out.push_back(ino);
  return out;
}

void Model::Resolve(const Inode& resolved, const std::string& event) {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(resolved.id);
  if (it == inodes_.end()) return;
  Inode& ino = it->second;
  for (const std::string& name : std::vector<std::string>(ino.names)) {
    if (std::find(resolved.names.begin(), resolved.names.end(), name) == resolved.names.end()) {
      RemoveName(ino, name);
    }
  }
  for (const std::string& name : resolved.names) {
    if (std::find(ino.names.begin(), ino.names.end(), name) == ino.names.end()) AddName(ino, name);
  }
  ino.committed = resolved.committed;
  ino.last_by = resolved.last_by;
  ino.last_cycle = resolved.last_cycle;
  ino.how = resolved.how;
  ino.pending.reset();
  ino.busy = false;
  if (resolved.born && !ino.born && !ino.names.empty()) {
    ino.born = true;
    born_index_[ino.id] = born_ids_.size();
    born_ids_.push_back(ino.id);
  }
  Journal(event.c_str(), ino);
  if (ino.names.empty()) Erase(ino.id);
}

void Model::Forget(uint64_t id, const std::string& event) {
  std::lock_guard lock(mu_);
  auto it = inodes_.find(id);
  if (it == inodes_.end()) return;
  Journal(event.c_str(), it->second);
  Erase(id);
}

uint64_t Model::committed_bytes() const {
  std::lock_guard lock(mu_);
  uint64_t total = 0;
  for (const auto& [id, ino] : inodes_) total += ino.committed.content.size();
  return total;
}

}  // namespace crash_cycle
