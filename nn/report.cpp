#include "nn/report.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <stdexcept>

namespace tapegrad::nn {

bool is_terminal(const std::ostream& os) {
    if (&os == &std::cout) return isatty(STDOUT_FILENO) == 1;
    if (&os == &std::cerr || &os == &std::clog) return isatty(STDERR_FILENO) == 1;
    return false;
}

ProgressBar::ProgressBar(std::string label, int64_t total, std::ostream& os, Style style,
                         std::chrono::milliseconds log_every)
    : label_(std::move(label)),
      total_(std::max<int64_t>(total, 1)),
      os_(os),
      terminal_(style == Style::Auto ? is_terminal(os) : style == Style::Terminal),
      interval_(terminal_ ? std::chrono::milliseconds(100) : log_every),
      // A log's first line waits a whole interval; a terminal draws at once.
      last_draw_(terminal_ ? std::chrono::steady_clock::time_point{} : std::chrono::steady_clock::now()) {}

void ProgressBar::update(int64_t done, const std::string& status) {
    const auto now = std::chrono::steady_clock::now();
    if (done < total_ && now - last_draw_ < interval_) return;
    last_draw_ = now;
    draw(done, status);
}

void ProgressBar::draw(int64_t done, const std::string& status) {
    const int64_t shown = std::clamp<int64_t>(done, 0, total_);
    if (terminal_) {
        constexpr int kWidth = 30;
        const int filled = static_cast<int>(kWidth * shown / total_);
        os_ << '\r' << label_ << " [" << std::string(filled, '#') << std::string(kWidth - filled, '.') << "] " << done
            << '/' << total_ << ' ' << status << "\033[K" << std::flush;
    } else if (done != last_drawn_) {  // finish() after the last update() adds no second line
        os_ << label_ << ' ' << done << '/' << total_ << " (" << 100 * shown / total_ << "%) " << status << '\n'
            << std::flush;
    }
    last_drawn_ = done;
}

void ProgressBar::finish(const std::string& status) {
    draw(total_, status);
    if (terminal_) os_ << '\n' << std::flush;
}

void write_curve_csv(const std::string& path, const std::vector<EpochRecord>& records) {
    std::ofstream f(path);
    if (!f) throw std::runtime_error(path + ": cannot open for writing");
    f << "epoch,train_loss,test_accuracy,seconds\n" << std::setprecision(6) << std::fixed;
    for (const auto& r : records) f << r.epoch << ',' << r.train_loss << ',' << r.test_accuracy << ',' << r.seconds << '\n';
    if (!f.flush()) throw std::runtime_error(path + ": write failed");
}

std::vector<EpochRecord> read_curve_csv(const std::string& path) {
    std::ifstream f(path);
    if (!f) throw std::runtime_error(path + ": cannot open");
    std::string line;
    if (!std::getline(f, line) || line != "epoch,train_loss,test_accuracy,seconds")
        throw std::runtime_error(path + ": not a learning-curve CSV (bad header)");
    std::vector<EpochRecord> out;
    while (std::getline(f, line)) {
        if (line.empty()) continue;
        std::istringstream row(line);
        EpochRecord r;
        char c1, c2, c3;
        if (!(row >> r.epoch >> c1 >> r.train_loss >> c2 >> r.test_accuracy >> c3 >> r.seconds) || c1 != ',' ||
            c2 != ',' || c3 != ',')
            throw std::runtime_error(path + ": malformed row '" + line + "'");
        out.push_back(r);
    }
    return out;
}

namespace {
// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `target` ticks over `span`.
double nice_step(double span, int target) {
    const double raw = span / target;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0})
        if (raw <= m * mag) return m * mag;
    return 10 * mag;
}

std::string xml_escape(const std::string& text) {
    std::string out;
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            default: out += c;
        }
    }
    return out;
}

std::string fmt(double v, int precision) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(precision) << v;
    return s.str();
}
}  // namespace

void write_curve_svg(const std::string& path, const std::vector<EpochRecord>& records, const std::string& title) {
    constexpr double W = 720, H = 460, left = 70, right = 70, top = 75, bottom = 60;
    const double pw = W - left - right, ph = H - top - bottom;
    const std::string loss_colour = "#d62728", acc_colour = "#1f77b4";

    double max_epoch = 1, max_loss = 0, min_acc = 1, max_acc = 0;
    for (const auto& r : records) {
        max_epoch = std::max<double>(max_epoch, r.epoch);
        max_loss = std::max(max_loss, r.train_loss);
        min_acc = std::min(min_acc, r.test_accuracy);
        max_acc = std::max(max_acc, r.test_accuracy);
    }
    if (max_loss <= 0) max_loss = 1;
    const double loss_step = nice_step(max_loss, 5);
    const double loss_top = std::ceil(max_loss / loss_step) * loss_step;
    if (records.empty()) min_acc = 0, max_acc = 1;
    const double acc_step = nice_step(std::max(max_acc - min_acc, 0.01), 5);
    const double acc_low = std::floor(min_acc / acc_step) * acc_step;
    const double acc_high = std::max(std::ceil(max_acc / acc_step) * acc_step, acc_low + acc_step);
    const double epoch_step = std::max(1.0, nice_step(max_epoch, 10));

    auto x_of = [&](double e) { return left + pw * e / max_epoch; };
    auto y_loss = [&](double l) { return top + ph * (1 - l / loss_top); };
    auto y_acc = [&](double a) { return top + ph * (1 - (a - acc_low) / (acc_high - acc_low)); };

    std::ostringstream s;
    s << std::fixed << std::setprecision(1);
    s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W
      << ' ' << H << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
    s << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    s << "<text x=\"" << W / 2 << "\" y=\"28\" text-anchor=\"middle\" font-size=\"16\">" << xml_escape(title) << "</text>\n";
    // Grid and ticks.
    for (double e = 0; e <= max_epoch + 1e-9; e += epoch_step) {
        s << "<line x1=\"" << x_of(e) << "\" y1=\"" << top << "\" x2=\"" << x_of(e) << "\" y2=\"" << top + ph
          << "\" stroke=\"#eeeeee\"/>\n";
        s << "<text x=\"" << x_of(e) << "\" y=\"" << top + ph + 18 << "\" text-anchor=\"middle\">" << fmt(e, 0)
          << "</text>\n";
    }
    for (double l = 0; l <= loss_top + 1e-9; l += loss_step) {
        s << "<line x1=\"" << left << "\" y1=\"" << y_loss(l) << "\" x2=\"" << left + pw << "\" y2=\"" << y_loss(l)
          << "\" stroke=\"#eeeeee\"/>\n";
        s << "<text x=\"" << left - 8 << "\" y=\"" << y_loss(l) + 4 << "\" text-anchor=\"end\" fill=\"" << loss_colour
          << "\">" << fmt(l, loss_step < 0.1 ? 2 : 1) << "</text>\n";
    }
    for (double a = acc_low; a <= acc_high + 1e-9; a += acc_step)
        s << "<text x=\"" << left + pw + 8 << "\" y=\"" << y_acc(a) + 4 << "\" fill=\"" << acc_colour << "\">"
          << fmt(a, acc_step < 0.01 ? 3 : 2) << "</text>\n";
    // Axes and their labels.
    s << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
      << "\" fill=\"none\" stroke=\"black\"/>\n";
    s << "<text x=\"" << left + pw / 2 << "\" y=\"" << H - 18 << "\" text-anchor=\"middle\">epoch</text>\n";
    s << "<text transform=\"translate(20," << top + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\" fill=\""
      << loss_colour << "\">training loss</text>\n";
    s << "<text transform=\"translate(" << W - 16 << ',' << top + ph / 2
      << ") rotate(90)\" text-anchor=\"middle\" fill=\"" << acc_colour << "\">test accuracy</text>\n";
    // The two curves, with a marker per epoch.
    auto curve = [&](const std::string& colour, auto y_of) {
        s << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\" points=\"";
        for (const auto& r : records) s << x_of(r.epoch) << ',' << y_of(r) << ' ';
        s << "\"/>\n";
        for (const auto& r : records)
            s << "<circle cx=\"" << x_of(r.epoch) << "\" cy=\"" << y_of(r) << "\" r=\"3\" fill=\"" << colour << "\"/>\n";
    };
    curve(loss_colour, [&](const EpochRecord& r) { return y_loss(r.train_loss); });
    curve(acc_colour, [&](const EpochRecord& r) { return y_acc(r.test_accuracy); });
    // Legend: one row between the title and the plot, where no curve can hide it.
    const double ly = top - 22;
    s << "<line x1=\"" << left << "\" y1=\"" << ly << "\" x2=\"" << left + 24 << "\" y2=\"" << ly << "\" stroke=\""
      << loss_colour << "\" stroke-width=\"2\"/><text x=\"" << left + 30 << "\" y=\"" << ly + 4
      << "\">training loss (left axis)</text>\n";
    s << "<line x1=\"" << left + 220 << "\" y1=\"" << ly << "\" x2=\"" << left + 244 << "\" y2=\"" << ly
      << "\" stroke=\"" << acc_colour << "\" stroke-width=\"2\"/><text x=\"" << left + 250 << "\" y=\"" << ly + 4
      << "\">test accuracy (right axis)</text>\n";
    s << "</svg>\n";

    std::ofstream f(path);
    if (!f) throw std::runtime_error(path + ": cannot open for writing");
    f << s.str();
    if (!f.flush()) throw std::runtime_error(path + ": write failed");
}

}  // namespace tapegrad::nn
