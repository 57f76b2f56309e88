#include "nn/report.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <charconv>
#include <iomanip>
#include <iostream>
#include <limits>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include "nn/file_io.hpp"

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

namespace {

const std::string kCurveHeader = "epoch,train_loss,test_accuracy,seconds";

// The shortest text that reads back as exactly `v`; "inf", "-inf" and "nan" for the values that
// are not finite (as pandas writes them), which read_curve_csv accepts.
std::string exact_text(double v) {
    char buf[32];  // the longest shortest form, "-2.2250738585072014e-308", has 24 characters
    return std::string(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

// Parses all of `field` as a T, or returns false.
template <class T>
bool parse_field(std::string_view field, T& value) {
    const auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), value);
    return ec == std::errc() && end == field.data() + field.size() && !field.empty();
}

}  // namespace

void write_curve_csv(const std::string& path, const std::vector<EpochRecord>& records) {
    std::string text = kCurveHeader + "\n";
    for (const auto& r : records)
        text += std::to_string(r.epoch) + ',' + exact_text(r.train_loss) + ',' + exact_text(r.test_accuracy) + ',' +
                exact_text(r.seconds) + '\n';
    detail::write_file_atomically("write_curve_csv", path, text);
}

std::vector<EpochRecord> read_curve_csv(const std::string& path) {
    const std::string who = "read_curve_csv";
    const std::vector<uint8_t> bytes = detail::read_whole_file(who, path, std::size_t{1} << 30, "1 GiB");
    const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    std::vector<EpochRecord> out;
    std::size_t line_number = 0;
    for (std::size_t at = 0; at < text.size();) {
        const std::size_t end = std::min(text.find('\n', at), text.size());
        std::string_view line = text.substr(at, end - at);
        at = end + 1;
        ++line_number;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // written on Windows
        if (line_number == 1) {
            if (line != kCurveHeader)
                throw std::runtime_error(who + ": " + path + " is not a learning-curve CSV (bad header; expected \"" +
                                         kCurveHeader + "\")");
            continue;
        }
        if (line.empty()) continue;
        std::vector<std::string_view> fields;
        for (std::size_t from = 0;;) {
            const std::size_t comma = line.find(',', from);
            fields.push_back(line.substr(from, comma == std::string_view::npos ? comma : comma - from));
            if (comma == std::string_view::npos) break;
            from = comma + 1;
        }
        EpochRecord r;
        const bool ok = fields.size() == 4 && parse_field(fields[0], r.epoch) && parse_field(fields[1], r.train_loss) &&
                        parse_field(fields[2], r.test_accuracy) && parse_field(fields[3], r.seconds);
        if (!ok)
            throw std::runtime_error(who + ": " + path + " line " + std::to_string(line_number) + ": malformed row '" +
                                     std::string(line.substr(0, 200)) + "' (expected " + kCurveHeader + ")");
        out.push_back(r);
    }
    if (line_number == 0) throw std::runtime_error(who + ": " + path + " is empty, not a learning-curve CSV (bad header)");
    return out;
}

namespace {
// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `target` ticks over `span` > 0.
double nice_step(double span, int target) {
    const double raw = span / target;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0})
        if (raw <= m * mag) return m * mag;
    return 10 * mag;
}

// Values beyond this magnitude (and those that are not finite) are left out of the plot: the axis
// arithmetic on them would overflow.
constexpr double kPlottable = 1e300;
bool plottable(double v) { return std::abs(v) <= kPlottable; }  // false for NaN

// An axis from `low` to `low + step * steps`, both multiples of a nice step, that covers [lo, hi]
// (plottable values, lo <= hi) in about `target` steps. `min_span` keeps a flat curve off the
// edges; the span is also kept above rounding, so the axis never has zero length.
struct Axis {
    double low, step;
    int steps;
    double high() const { return low + step * steps; }
    double fraction(double v) const { return (v - low) / (step * steps); }
};
Axis nice_axis(double lo, double hi, double min_span, int target) {
    const double span = std::max({hi - lo, min_span, 1e-6 * std::max(std::abs(lo), std::abs(hi))});
    const double step = nice_step(span, target);
    const double first = std::floor(lo / step), last = std::ceil(hi / step);
    return {first * step, step, std::max(1, static_cast<int>(last - first))};
}

// The tick label of `v` on an axis of step `step`: as many decimals as the step needs.
std::string tick_label(double v, double step) {
    std::ostringstream s;
    if (std::abs(v) >= 1e9 || step < 1e-6) {
        s << std::setprecision(4) << v;
    } else {
        const int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
        s << std::fixed << std::setprecision(decimals) << v;
    }
    return s.str();
}

// The length of the valid XML character encoded in UTF-8 at text[i], or 0: XML 1.0 allows neither
// control characters other than tab and line breaks, nor invalid UTF-8, surrogates, U+FFFE, U+FFFF.
std::size_t xml_char_length(const std::string& text, std::size_t i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const std::size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > text.size()) return 0;
    uint32_t code = n == 1 ? c : c & (0x7Fu >> n);
    for (std::size_t k = 1; k < n; ++k) {
        const auto d = static_cast<unsigned char>(text[i + k]);
        if ((d & 0xC0) != 0x80) return 0;
        code = (code << 6) | (d & 0x3F);
    }
    constexpr uint32_t kShortest[] = {0, 0, 0x80, 0x800, 0x10000};  // overlong encodings are invalid
    const bool valid = code >= kShortest[n] && code <= 0x10FFFF && !(code >= 0xD800 && code <= 0xDFFF) &&
                       code != 0xFFFE && code != 0xFFFF && (code >= 0x20 || code == '\t' || code == '\n' || code == '\r');
    return valid ? n : 0;
}

// `text` as XML character data: markup characters escaped, anything XML cannot hold replaced by U+FFFD.
std::string xml_escape(const std::string& text) {
    std::string out;
    for (std::size_t i = 0; i < text.size();) {
        const std::size_t n = xml_char_length(text, i);
        if (n == 0) {
            out += "\xEF\xBF\xBD";
            ++i;
            continue;
        }
        switch (text[i]) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            default: out.append(text, i, n);
        }
        i += n;
    }
    return out;
}
}  // namespace

void write_curve_svg(const std::string& path, const std::vector<EpochRecord>& records, const std::string& title) {
    constexpr double W = 720, H = 460, left = 70, right = 70, top = 75, bottom = 60;
    const double pw = W - left - right, ph = H - top - bottom;
    const std::string loss_colour = "#d62728", acc_colour = "#1f77b4";

    // The axes cover the plottable values; an epoch whose loss or accuracy is not (a NaN loss, say)
    // leaves a gap in that curve.
    double min_epoch = 0, max_epoch = 1, min_loss = 0, max_loss = 0;
    double min_acc = std::numeric_limits<double>::infinity(), max_acc = -min_acc;
    for (const auto& r : records) {
        min_epoch = std::min<double>(min_epoch, static_cast<double>(r.epoch));
        max_epoch = std::max<double>(max_epoch, static_cast<double>(r.epoch));
        if (plottable(r.train_loss)) {
            min_loss = std::min(min_loss, r.train_loss);
            max_loss = std::max(max_loss, r.train_loss);
        }
        if (plottable(r.test_accuracy)) {
            min_acc = std::min(min_acc, r.test_accuracy);
            max_acc = std::max(max_acc, r.test_accuracy);
        }
    }
    if (max_loss == min_loss) max_loss = 1;  // no loss, or every loss 0: [0, 1] as for a fresh run
    if (min_acc > max_acc) min_acc = 0, max_acc = 1;
    const Axis epochs = nice_axis(min_epoch, max_epoch, 1, 10);
    const Axis loss = nice_axis(min_loss, max_loss, 1e-300, 5);
    const Axis acc = nice_axis(min_acc, max_acc, 0.01, 5);
    // The epoch axis ends at the last epoch; its ticks are whole epochs.
    const double x_low = min_epoch, x_span = max_epoch - min_epoch;
    const double epoch_step = std::max(1.0, epochs.step);

    auto x_of = [&](double e) { return left + pw * (e - x_low) / x_span; };
    auto y_loss = [&](double l) { return top + ph * (1 - loss.fraction(l)); };
    auto y_acc = [&](double a) { return top + ph * (1 - acc.fraction(a)); };

    std::ostringstream s;
    s << std::fixed << std::setprecision(1);
    s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W
      << ' ' << H << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
    s << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    s << "<text x=\"" << W / 2 << "\" y=\"28\" text-anchor=\"middle\" font-size=\"16\">" << xml_escape(title) << "</text>\n";
    // Grid and ticks.
    const double first_tick = std::ceil(x_low / epoch_step), last_tick = std::floor(max_epoch / epoch_step);
    for (double k = first_tick; k <= last_tick; ++k) {
        const double e = k * epoch_step;
        s << "<line x1=\"" << x_of(e) << "\" y1=\"" << top << "\" x2=\"" << x_of(e) << "\" y2=\"" << top + ph
          << "\" stroke=\"#eeeeee\"/>\n";
        s << "<text x=\"" << x_of(e) << "\" y=\"" << top + ph + 18 << "\" text-anchor=\"middle\">"
          << tick_label(e, epoch_step) << "</text>\n";
    }
    for (int k = 0; k <= loss.steps; ++k) {
        const double l = loss.low + k * loss.step;
        s << "<line x1=\"" << left << "\" y1=\"" << y_loss(l) << "\" x2=\"" << left + pw << "\" y2=\"" << y_loss(l)
          << "\" stroke=\"#eeeeee\"/>\n";
        s << "<text x=\"" << left - 8 << "\" y=\"" << y_loss(l) + 4 << "\" text-anchor=\"end\" fill=\"" << loss_colour
          << "\">" << tick_label(l, loss.step) << "</text>\n";
    }
    for (int k = 0; k <= acc.steps; ++k) {
        const double a = acc.low + k * acc.step;
        s << "<text x=\"" << left + pw + 8 << "\" y=\"" << y_acc(a) + 4 << "\" fill=\"" << acc_colour << "\">"
          << tick_label(a, acc.step) << "</text>\n";
    }
    // Axes and their labels.
    s << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
      << "\" fill=\"none\" stroke=\"black\"/>\n";
    s << "<text x=\"" << left + pw / 2 << "\" y=\"" << H - 18 << "\" text-anchor=\"middle\">epoch</text>\n";
    s << "<text transform=\"translate(20," << top + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\" fill=\""
      << loss_colour << "\">training loss</text>\n";
    s << "<text transform=\"translate(" << W - 16 << ',' << top + ph / 2
      << ") rotate(90)\" text-anchor=\"middle\" fill=\"" << acc_colour << "\">test accuracy</text>\n";
    // The two curves, with a marker per plotted epoch: one polyline per run of plottable values.
    auto curve = [&](const std::string& colour, auto value_of, auto y_of) {
        bool open = false;
        for (const auto& r : records) {
            const bool shown = plottable(value_of(r));
            if (shown && !open) s << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\" points=\"";
            if (!shown && open) s << "\"/>\n";
            open = shown;
            if (shown) s << x_of(static_cast<double>(r.epoch)) << ',' << y_of(value_of(r)) << ' ';
        }
        if (open) s << "\"/>\n";
        for (const auto& r : records)
            if (plottable(value_of(r)))
                s << "<circle cx=\"" << x_of(static_cast<double>(r.epoch)) << "\" cy=\"" << y_of(value_of(r))
                  << "\" r=\"3\" fill=\"" << colour << "\"/>\n";
    };
    curve(loss_colour, [](const EpochRecord& r) { return r.train_loss; }, y_loss);
    curve(acc_colour, [](const EpochRecord& r) { return r.test_accuracy; }, y_acc);
    // Legend: one row between the title and the plot, where no curve can hide it.
    const double ly = top - 22;
    s << "<line x1=\"" << left << "\" y1=\"" << ly << "\" x2=\"" << left + 24 << "\" y2=\"" << ly << "\" stroke=\""
      << loss_colour << "\" stroke-width=\"2\"/><text x=\"" << left + 30 << "\" y=\"" << ly + 4
      << "\">training loss (left axis)</text>\n";
    s << "<line x1=\"" << left + 220 << "\" y1=\"" << ly << "\" x2=\"" << left + 244 << "\" y2=\"" << ly
      << "\" stroke=\"" << acc_colour << "\" stroke-width=\"2\"/><text x=\"" << left + 250 << "\" y=\"" << ly + 4
      << "\">test accuracy (right axis)</text>\n";
    s << "</svg>\n";
    detail::write_file_atomically("write_curve_svg", path, s.str());
}

}  // namespace tapegrad::nn
