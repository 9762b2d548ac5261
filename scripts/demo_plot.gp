# Renders the microservices demo's run (scripts/demo.sh) as one PNG:
#   gnuplot -e "dir='build/demo'; ncols=N" scripts/demo_plot.gp -> dir/demo.png
# (N: the columns of timeline.csv). dir/marks.gp sets the event marks.
# Top: calls per second served by each replica. Middle: quotes per second by
# outcome, with the pricing breakers' transitions. Bottom: latency p50 and
# p99. Dashed lines mark the injected events.
set datafile separator ','
set terminal pngcairo size 1200,900 font 'sans,10' noenhanced
set output dir.'/demo.png'
timeline = dir.'/timeline.csv'
breakers = dir.'/breakers.csv'
stats timeline using 1 nooutput
tmax = STATS_max
set key outside right top
set grid
set xrange [0:tmax]
set multiplot layout 3,1 title 'h2rpc microservices demo'
set lmargin 10
set rmargin 24
load dir.'/marks.gp'

set title 'calls per second served by each replica'
set ylabel 'calls/s'
set yrange [0:*]
plot for [i=8:ncols] timeline using 1:i with lines lw 2 title columnhead(i)

set title 'quotes per second by outcome, and the pricing breaker (right axis)'
state(s) = s eq 'OPEN' ? 2 : s eq 'HALF_OPEN' ? 1 : 0
set y2range [-0.2:2.5]
set y2tics ('CLOSED' 0, 'HALF_OPEN' 1, 'OPEN' 2)
plot timeline using 1:3 with lines lw 2 title 'priced', \
     timeline using 1:4 with lines lw 2 title 'degraded', \
     timeline using 1:5 with lines lw 2 title 'failed', \
     breakers using 1:(state(stringcolumn(4))) axes x1y2 with steps lw 2 \
       lc 'red' title 'breaker'
unset y2tics

set title 'latency of quotes, seen by the client'
unset label
set ylabel 'ms'
set xlabel 'seconds into the run'
plot timeline using 1:6 with lines lw 2 title 'p50', \
     timeline using 1:7 with lines lw 2 title 'p99'
unset multiplot
