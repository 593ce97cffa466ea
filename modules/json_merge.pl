#!/usr/bin/perl
# An example rigger user module in Perl (core modules only): merge data into a JSON file.
#
# rigger-doc:
# short: Merge a dictionary into a JSON file
# description: Deep-merges `data` into the JSON object stored in `path` (created when missing) and writes the result with sorted keys when it differs. Supports check mode and diff.
# options:
#   path: {type: path, required: true, description: The JSON file.}
#   data: {type: dict, required: true, description: Keys to set; nested dictionaries are merged, other values replaced.}
# returns:
#   result: the merged document
# check_mode: true
use strict;
use warnings;
use JSON::PP;

my $json = JSON::PP->new->canonical->pretty;
sub done { print JSON::PP->new->canonical->encode($_[0]), "\n"; exit($_[0]{failed} ? 1 : 0); }

my $args_file = $ARGV[0] or done({failed => JSON::PP::true, msg => "no arguments file"});
open(my $fh, '<', $args_file) or done({failed => JSON::PP::true, msg => "cannot read $args_file: $!"});
my $args = eval { decode_json(do { local $/; <$fh> }) } or done({failed => JSON::PP::true, msg => "bad arguments: $@"});
my $path = $args->{path} // done({failed => JSON::PP::true, msg => "path is required"});
my $data = $args->{data};
ref($data) eq 'HASH' or done({failed => JSON::PP::true, msg => "data must be a dictionary"});

my $before_text = '';
my $doc = {};
if (-e $path) {
    open(my $in, '<', $path) or done({failed => JSON::PP::true, msg => "cannot read $path: $!"});
    $before_text = do { local $/; <$in> };
    if ($before_text =~ /\S/) {
        $doc = eval { decode_json($before_text) };
        ref($doc) eq 'HASH' or done({failed => JSON::PP::true, msg => "$path does not hold a JSON object"});
    }
}

sub merge {
    my ($into, $from) = @_;
    for my $k (keys %$from) {
        if (ref($from->{$k}) eq 'HASH' && ref($into->{$k}) eq 'HASH') {
            merge($into->{$k}, $from->{$k});
        } else {
            $into->{$k} = $from->{$k};
        }
    }
}
merge($doc, $data);
my $after_text = $json->encode($doc);
my $changed = $after_text ne $before_text;
if ($changed && !$args->{_ansible_check_mode}) {
    my $tmp = "$path.rigger-tmp.$$";
    open(my $out, '>', $tmp) or done({failed => JSON::PP::true, msg => "cannot write $tmp: $!"});
    print $out $after_text;
    close($out) or done({failed => JSON::PP::true, msg => "cannot write $tmp: $!"});
    rename($tmp, $path) or done({failed => JSON::PP::true, msg => "cannot replace $path: $!"});
}
done({
    changed => $changed ? JSON::PP::true : JSON::PP::false,
    result  => $doc,
    path    => $path,
    ($changed ? (diff => {before => $before_text, after => $after_text}) : ()),
});
