# frozen_string_literal: true

module Funcd
  # funcd-ruby starts Ruby with --disable-gems and loads RubyGems on first need.
  #
  # RubyGems' own start-up evaluates the specification of every default gem (70 in Debian's Ruby
  # 3.1): 35-40 ms, half of funcd-ruby's cold start, spent even by a handler that uses no gem.
  # The load path alone finds the standard library and Debian's ruby-* packages. RubyGems is
  # loaded, and from then on is exactly as if Ruby had started with it, when
  # - a `require` fails on the load path (a gem under GEM_HOME, GEM_PATH or a bundle),
  # - code names `Gem` (an autoload), or calls `gem`,
  # - the glue adds a bundle's gem paths.
  #
  # --disable-gems also leaves out did_you_mean and error_highlight, which RubyGems' prelude
  # would load. Both add to an exception's message when it is formatted, so they are loaded when
  # funcd first formats one (`.full_message`), and the log reads as it did.
  module LazyGems
    module_function

    # The top-level constants a Ruby started with RubyGems has from the start, and the library
    # that defines each. Code that uses one without a require of its own works under `ruby`, so
    # it must here too: each is an autoload.
    AUTOLOADS = {
      Gem: 'rubygems', RbConfig: 'rbconfig', CROSS_COMPILING: 'rbconfig', Monitor: 'monitor',
      MonitorMixin: 'monitor', DidYouMean: 'did_you_mean', ErrorHighlight: 'error_highlight'
    }.freeze

    # Installs the hooks; nothing to do in a Ruby that started with RubyGems (plain `ruby`, which
    # runs the glue's own tests).
    def install
      return if Object.const_defined?(:Gem, false)

      AUTOLOADS.each { |name, library| Object.autoload(name, library) unless Object.const_defined?(name, false) }
      Kernel.module_eval do
        alias_method :funcd_require_without_gems, :require
        private :funcd_require_without_gems

        def require(path)
          return Funcd::LazyGems.load_rubygems if path == 'rubygems'

          funcd_require_without_gems(path)
        rescue LoadError
          Funcd::LazyGems.load_rubygems
          raise if Funcd::LazyGems.hooked?(:require)

          require(path) # RubyGems' own require now
        end
        private :require

        def gem(name, *requirements)
          Funcd::LazyGems.load_rubygems
          raise NotImplementedError, 'Kernel#gem without RubyGems' if Funcd::LazyGems.hooked?(:gem)

          gem(name, *requirements) # RubyGems' own gem now
        end
        private :gem
      end
    end

    # Whether Kernel's `name` is still the hook above.
    def hooked?(name)
      Kernel.instance_method(name).source_location&.first == __FILE__
    end

    # True once RubyGems is loaded (always in a Ruby that started with it).
    def loaded?
      Kernel.private_method_defined?(:gem_original_require)
    end

    # One thread loads RubyGems; a require on another thread meanwhile goes through the hook
    # and waits here until it is complete.
    LOADING = Thread::Mutex.new

    # Loads RubyGems unless this did already: true if this call loaded it. RubyGems wraps the
    # require it finds, the hook; it is pointed at Ruby's own once RubyGems is in, so that the
    # hook is out of the way for good.
    def load_rubygems
      # RubyGems' own optional requires that fail, while it loads, come through the hook too.
      return false if LOADING.owned?

      LOADING.synchronize do
        return false if @loaded

        Kernel.require('rubygems')
        Kernel.module_eval do
          alias_method :gem_original_require, :funcd_require_without_gems
          private :gem_original_require
        end
        @loaded = true
      end
    end

    # The exception's full message, as a Ruby started with RubyGems would print it.
    def full_message(error)
      error_helpers
      error.full_message(highlight: false)
    end

    # Loads what adds hints to an exception's message, once; the order is RubyGems' prelude's.
    def error_helpers
      return if @error_helpers

      @error_helpers = true
      %w[error_highlight did_you_mean].each do |helper|
        require helper
      rescue LoadError
        nil
      end
    end
  end
end

Funcd::LazyGems.install
