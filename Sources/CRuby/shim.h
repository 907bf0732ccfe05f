// Debian's ruby-dev (Ruby 3.1). Only CRubyEmbed, funcd's C side of the Ruby host, includes Ruby's
// headers; Swift sees the plain functions of funcd_ruby.h.
#include <ruby.h>
#include <ruby/thread.h>
