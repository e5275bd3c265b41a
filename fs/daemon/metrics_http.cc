// MetricsHttpServer: an accept loop and one short-lived session per
// connection (read a request, write the reply, close).
#include "fs/daemon/metrics_http.h"

#include <chrono>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace reclaimfs::fs {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::chrono::seconds kSessionTimeout{5};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const std::function<std::string()>* render)
      : stream_(std::move(socket)), render_(render) {}

  void Run() {
    stream_.expires_after(kSessionTimeout);
    http::async_read(stream_, buffer_, request_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return;
      self->Reply();
    });
  }

 private:
  void Reply() {
    response_.version(request_.version());
    response_.keep_alive(false);
    response_.set(http::field::server, "reclaimfs");
    if (request_.method() != http::verb::get && request_.method() != http::verb::head) {
      response_.result(http::status::method_not_allowed);
      response_.set(http::field::allow, "GET, HEAD");
      response_.set(http::field::content_type, "text/plain");
      response_.body() = "only GET\n";
    } else if (request_.target() != "/metrics") {
      response_.result(http::status::not_found);
      response_.set(http::field::content_type, "text/plain");
      response_.body() = "not found: try /metrics\n";
    } else {
      response_.result(http::status::ok);
      response_.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      response_.body() = (*render_)();
    }
    response_.prepare_payload();
    if (request_.method() == http::verb::head) response_.body().clear();
    http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code, size_t) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_{8192};
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  const std::function<std::string()>* render_;
};

}  // namespace

struct MetricsHttpServer::Io {
  asio::io_context context;
  tcp::acceptor acceptor{context};

  void Accept(const std::function<std::string()>* render) {
    acceptor.async_accept([this, render](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (!ec) std::make_shared<Session>(std::move(socket), render)->Run();
      Accept(render);
    });
  }
};

MetricsHttpServer::MetricsHttpServer(std::function<std::string()> render) : render_(std::move(render)) {}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

absl::Status MetricsHttpServer::Start(const ListenAddress& address) {
  io_ = std::make_unique<Io>();
  beast::error_code ec;
  const asio::ip::address ip = asio::ip::make_address(address.host, ec);
  const tcp::endpoint endpoint(ip, address.port);
  if (!ec) io_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) io_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) io_->acceptor.bind(endpoint, ec);
  if (!ec) io_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    io_.reset();
    return absl::UnavailableError(
        absl::StrCat("metrics_listen: cannot listen on ", address.host, ":", address.port, ": ", ec.message()));
  }
  port_ = io_->acceptor.local_endpoint().port();
  io_->Accept(&render_);
  thread_ = std::thread([io = io_.get()] { io->context.run(); });
  spdlog::info("metrics on http://{}:{}/metrics", address.host, port_);
  return absl::OkStatus();
}

void MetricsHttpServer::Stop() {
  if (!io_) return;
  asio::post(io_->context, [io = io_.get()] {
    beast::error_code ignored;
    io->acceptor.close(ignored);
    io->context.stop();
  });
  if (thread_.joinable()) thread_.join();
  io_.reset();
}

}  // namespace reclaimfs::fs
