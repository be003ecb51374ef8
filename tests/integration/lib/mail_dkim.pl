#!/usr/bin/perl
# Mail::DKIM (an implementation independent of libopendkim) for the DKIM interop tests.
#   mail_dkim.pl sign KEYFILE DOMAIN SELECTOR METHOD [HEADERS] < msg > signed msg
#   mail_dkim.pl verify DNS_PORT < msg     prints "RESULT DOMAIN SELECTOR ALGORITHM DETAIL" per signature
use strict;
use warnings;
use Mail::DKIM::Signer;
use Mail::DKIM::Verifier;
use Mail::DKIM::PrivateKey;
use Mail::DKIM::DNS;
use Net::DNS::Resolver;
use Crypt::OpenSSL::RSA;

binmode STDIN;
binmode STDOUT;
my $mode = shift @ARGV;
my $msg = do { local $/; <STDIN> };

if ($mode eq 'sign') {
    my ($keyfile, $domain, $selector, $method, $headers) = @ARGV;
    open my $fh, '<', $keyfile or die "cannot read $keyfile: $!";
    my $pem = do { local $/; <$fh> };
    close $fh;
    my $rsa = Crypt::OpenSSL::RSA->new_private_key($pem);  # PKCS#8 or traditional
    my $key = Mail::DKIM::PrivateKey->load(Cork => $rsa);
    my %args = (Algorithm => 'rsa-sha256', Method => $method, Domain => $domain,
                Selector => $selector, Key => $key);
    $args{Headers} = $headers if defined $headers && length $headers;
    my $dkim = Mail::DKIM::Signer->new(%args);
    $dkim->PRINT($msg);
    $dkim->CLOSE;
    my $sig = $dkim->signature->as_string;
    $sig =~ s/\r?\n/\r\n/g;
    print $sig, "\r\n", $msg;
} elsif ($mode eq 'verify') {
    my ($port) = @ARGV;
    my $res = Net::DNS::Resolver->new(nameservers => ['127.0.0.1'], port => $port, recurse => 1,
                                      udp_timeout => 5, tcp_timeout => 5, retry => 1);
    Mail::DKIM::DNS::resolver($res);
    my $dkim = Mail::DKIM::Verifier->new();
    $dkim->PRINT($msg);
    $dkim->CLOSE;
    my @sigs = $dkim->signatures;
    print "none\n" unless @sigs;
    foreach my $s (@sigs) {
        my $detail = $s->result_detail // '';
        $detail =~ s/\s+/_/g;
        printf "%s %s %s %s %s\n", $s->result, $s->domain, $s->selector, $s->algorithm, $detail;
    }
} else {
    die "usage: mail_dkim.pl sign|verify ...\n";
}
