// CSV files and the gnuplot script of reclaim_bench.
#include "tools/bench_plots.h"

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

namespace reclaimfs::bench {

void WriteTimeline(const std::string& path, const std::vector<TimelineSample>& samples) {
  std::ofstream out(path);
  out << "t_s,used_mib,limit_mib,dirty_mib,writeback_mib,read_mibps,write_mibps\n";
  for (const TimelineSample& s : samples) {
    out << s.t << ',' << s.used_mib << ',' << s.limit_mib << ',' << s.dirty_mib << ',' << s.writeback_mib << ','
        << s.read_mibps << ',' << s.write_mibps << '\n';
  }
}

void WriteHistogram(const std::string& path, const std::string& metrics, const std::string& histogram) {
  std::ofstream out(path);
  out << "le_us,count\n";
  const std::regex bucket("^reclaimfs_" + histogram + "_bucket\\{.*le=\"([0-9.]+)\"\\} ([0-9]+)$");
  std::istringstream in(metrics);
  std::string line;
  double previous = 0;
  while (std::getline(in, line)) {
    std::smatch m;
    if (!std::regex_match(line, m, bucket)) continue;  // +Inf is left out: it has no place on the axis
    const double cumulative = std::stod(m[2]);
    out << std::stod(m[1]) * 1e6 << ',' << cumulative - previous << '\n';
    previous = cumulative;
  }
}

bool Plot(const std::string& dir, const std::vector<std::string>& modes) {
  std::ofstream gp(dir + "/reclaim_bench.gp");
  gp << "set datafile separator ','\n"
        "set terminal pngcairo size 900,500\n"
        "set output 'direct_stall.png'\n"
        "set title 'Direct-reclaim stalls per call (bucket upper bounds)'\n"
        "set logscale x 2\nset logscale y 10\nset xrange [1:67108864]\n"
        "set xtics ('1 us' 1, '32 us' 31, '1 ms' 1023, '32 ms' 32767, '1 s' 1048575, '32 s' 33554431)\n"
        "set xlabel 'stall of one direct-reclaim call (bucket upper bound)'\n"
        "set ylabel 'calls'\nset key top right\nset style data linespoints\n"
        "plot ";
  for (size_t i = 0; i < modes.size(); ++i) {
    gp << (i ? ", " : "") << "'stall-" << modes[i] << "-r1.csv' every ::1 using 1:($2 > 0 ? $2 : 1/0) title '"
       << modes[i] << "'";
  }
  gp << "\n";
  for (const std::string& mode : modes) {
    gp << "unset logscale\nset output 'timeline-" << mode << ".png'\n"
       << "set title 'Budget use, dirty memory and throughput (" << mode << ")'\n"
       << "set xlabel 'time (s)'\nset ylabel 'MiB'\nset y2label 'MiB/s'\nset y2tics\nset ytics nomirror\n"
       << "set key outside bottom center horizontal\nset style data lines\n"
       << "plot 'timeline-" << mode << "-r1.csv' every ::1 using 1:2 title 'budget used', "
       << "'' every ::1 using 1:3 title 'budget limit', '' every ::1 using 1:4 title 'dirty', "
       << "'' every ::1 using 1:5 title 'writeback', '' every ::1 using 1:6 axes x1y2 title 'read MiB/s', "
       << "'' every ::1 using 1:7 axes x1y2 title 'write MiB/s'\n";
  }
  gp.close();
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    std::fprintf(stderr, "gnuplot is not installed: CSVs are in %s, no pictures\n", dir.c_str());
    return false;
  }
  const std::string cmd = "cd '" + dir + "' && gnuplot reclaim_bench.gp";
  if (std::system(cmd.c_str()) != 0) {
    std::fprintf(stderr, "gnuplot failed on %s/reclaim_bench.gp\n", dir.c_str());
    return false;
  }
  std::printf("pictures: %s/direct_stall.png and timeline-MODE.png\n", dir.c_str());
  return true;
}

}  // namespace reclaimfs::bench
