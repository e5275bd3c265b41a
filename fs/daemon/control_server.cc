// Control socket server. One io_context on one thread; each connection reads
// a line (bounded), dispatches it, writes the reply and closes.
#include "fs/daemon/control_server.h"

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <boost/asio.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "spdlog/spdlog.h"

namespace reclaimfs::fs {

namespace asio = boost::asio;
using Local = asio::local::stream_protocol;

namespace {

constexpr size_t kMaxRequestLine = 4096;

// One connection: read a line, reply, close.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Local::socket socket, const ControlServer* server)
      : socket_(std::move(socket)), buffer_(kMaxRequestLine), server_(server) {}

  void Run() {
    auto self = shared_from_this();
    asio::async_read_until(socket_, buffer_, '\n', [self](const boost::system::error_code& ec, size_t) {
      // EOF without a newline still carries a command.
      if (ec && ec != asio::error::eof) return;
      std::string line(asio::buffers_begin(self->buffer_.data()), asio::buffers_end(self->buffer_.data()));
      if (auto nl = line.find('\n'); nl != std::string::npos) line.resize(nl);
      self->reply_ = self->server_->Dispatch(line);
      asio::async_write(self->socket_, asio::buffer(self->reply_),
                        [self](const boost::system::error_code&, size_t) {
                          boost::system::error_code ignored;
                          self->socket_.shutdown(Local::socket::shutdown_both, ignored);
                          self->socket_.close(ignored);
                        });
    });
  }

 private:
  Local::socket socket_;
  asio::streambuf buffer_;
  std::string reply_;
  const ControlServer* server_;
};

}  // namespace

struct ControlServer::Io {
  asio::io_context context;
  Local::acceptor acceptor{context};
  ino_t socket_ino = 0;  // to remove the file at exit only if it is still ours

  void Accept(const ControlServer* server) {
    acceptor.async_accept([this, server](const boost::system::error_code& ec, Local::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (!ec) std::make_shared<Session>(std::move(socket), server)->Run();
      Accept(server);
    });
  }
};

ControlServer::ControlServer(std::string socket_path) : socket_path_(std::move(socket_path)) {
  AddCommand("ping", "answers ok", [](const std::vector<std::string>& args) {
    return args.empty() ? std::string("ok\n") : std::string("error: ping takes no arguments\n");
  });
}

ControlServer::~ControlServer() { Stop(); }

void ControlServer::AddCommand(std::string name, std::string help, Handler handler) {
  commands_[std::move(name)] = Command{std::move(help), std::move(handler)};
}

std::string ControlServer::Dispatch(std::string_view line) const {
  std::vector<std::string> words =
      absl::StrSplit(absl::string_view(line.data(), line.size()), absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
  if (words.empty()) return "error: empty command (try help)\n";
  const std::string name = words.front();
  words.erase(words.begin());
  if (name == "help" && !words.empty()) return "error: help takes no arguments\n";
  if (name == "help") {
    std::string out;
    for (const auto& [command, entry] : commands_) absl::StrAppend(&out, command, "\t", entry.help, "\n");
    absl::StrAppend(&out, "help\tlists the commands\n");
    return out;
  }
  auto it = commands_.find(name);
  if (it == commands_.end()) return absl::StrCat("error: unknown command '", name, "' (try help)\n");
  std::string reply = it->second.handler(words);
  if (reply.empty() || reply.back() != '\n') reply.push_back('\n');
  return reply;
}

absl::Status ControlServer::Start() {
  namespace stdfs = std::filesystem;
  if (sizeof(sockaddr_un::sun_path) <= socket_path_.size()) {
    return absl::InvalidArgumentError(absl::StrCat("control socket: path too long: ", socket_path_));
  }
  const stdfs::path path(socket_path_);
  if (path.has_parent_path()) {
    const stdfs::path dir = path.parent_path();
    std::error_code ec;
    if (!stdfs::exists(dir, ec)) {
      if (!stdfs::create_directories(dir, ec) && ec) {
        return absl::UnavailableError(
            absl::StrCat("control socket: cannot create ", dir.string(), ": ", ec.message()));
      }
      ::chmod(dir.c_str(), 0700);
    }
  }
  // A leftover file (a daemon that died) would make bind fail.
  struct stat st;
  if (::lstat(socket_path_.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::AlreadyExistsError(absl::StrCat("control socket: ", socket_path_, " exists and is not a socket"));
    }
    ::unlink(socket_path_.c_str());
  }

  io_ = std::make_unique<Io>();
  boost::system::error_code ec;
  const Local::endpoint endpoint(socket_path_);
  io_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) io_->acceptor.bind(endpoint, ec);
  if (!ec && ::chmod(socket_path_.c_str(), 0600) != 0) {
    ec = boost::system::error_code(errno, boost::system::system_category());
  }
  if (!ec) io_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    io_.reset();
    ::unlink(socket_path_.c_str());
    return absl::UnavailableError(absl::StrCat("control socket: ", socket_path_, ": ", ec.message()));
  }
  if (::stat(socket_path_.c_str(), &st) == 0) io_->socket_ino = st.st_ino;
  io_->Accept(this);
  thread_ = std::thread([io = io_.get()] { io->context.run(); });
  spdlog::debug("control socket {}", socket_path_);
  return absl::OkStatus();
}

void ControlServer::Stop() {
  if (!io_) return;
  asio::post(io_->context, [io = io_.get()] {
    boost::system::error_code ignored;
    io->acceptor.close(ignored);
    io->context.stop();
  });
  if (thread_.joinable()) thread_.join();
  struct stat st;
  if (::stat(socket_path_.c_str(), &st) == 0 && st.st_ino == io_->socket_ino) ::unlink(socket_path_.c_str());
  io_.reset();
}

}  // namespace reclaimfs::fs
