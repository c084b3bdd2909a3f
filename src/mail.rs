//! Outgoing mail (docs/CONFIG.md, `[mail]`): the reset and verification mails, queued and sent
//! off the request path by one task, with retries on transient failures. A full queue drops
//! the mail (counted); failures are logged with the kind and the server's answer, never the
//! token, the body or the server's credentials.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::{mpsc, watch};

use crate::config::MailSettings;
use crate::metrics::Metrics;

/// Mails waiting to be sent, at most.
const QUEUE: usize = 1024;
/// Attempts per mail, the first included; the waits between them double from one second.
const ATTEMPTS: u32 = 4;
/// Mails being sent at once: a slow or refusing server delays one of them, not the queue.
const SENDERS: usize = 4;
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// What a mail is for: its metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Reset,
    Verify,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Reset => "reset",
            Kind::Verify => "verify",
        }
    }
}

pub(crate) struct Mail {
    pub kind: Kind,
    pub to: String,
    pub subject: &'static str,
    pub body: String,
}

/// The sending side, held by the services.
#[derive(Clone)]
pub(crate) struct Mailer {
    queue: mpsc::Sender<Mail>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mailer")
    }
}

/// The task's side: the queue and where it sends.
pub(crate) struct Outbox {
    queue: mpsc::Receiver<Mail>,
    settings: MailSettings,
    metrics: Arc<Metrics>,
}

impl Mailer {
    /// A mailer and the outbox its task sends from.
    pub(crate) fn new(settings: &MailSettings, metrics: Arc<Metrics>) -> (Mailer, Outbox) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let mailer = Mailer {
            queue: tx,
            metrics: metrics.clone(),
        };
        let outbox = Outbox {
            queue: rx,
            settings: settings.clone(),
            metrics,
        };
        (mailer, outbox)
    }

    /// Queues `mail`; never waits.
    pub(crate) fn send(&self, mail: Mail) {
        let kind = mail.kind.label();
        if self.queue.try_send(mail).is_err() {
            self.metrics
                .mails
                .with_label_values(&[kind, "dropped"])
                .inc();
            tracing::warn!(kind, "mail queue full: a mail was dropped");
        }
    }
}

/// Sends what is queued until `shutdown` changes.
pub(crate) async fn run(mut outbox: Outbox, mut shutdown: watch::Receiver<bool>) {
    let transport = match transport(&outbox.settings) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "the mail transport could not be built: no mail is sent");
            return;
        }
    };
    let from: Mailbox = match outbox.settings.from.parse() {
        Ok(f) => f,
        Err(_) => return,
    };
    let senders = Arc::new(tokio::sync::Semaphore::new(SENDERS));
    loop {
        let mail = tokio::select! {
            m = outbox.queue.recv() => match m { Some(m) => m, None => return },
            _ = shutdown.changed() => return,
        };
        let Ok(sender) = senders.clone().acquire_owned().await else {
            return;
        };
        let (transport, from, metrics) = (transport.clone(), from.clone(), outbox.metrics.clone());
        tokio::spawn(async move {
            let kind = mail.kind.label();
            let result = deliver(&transport, &from, mail).await;
            let label = if result { "sent" } else { "failed" };
            metrics.mails.with_label_values(&[kind, label]).inc();
            drop(sender);
        });
    }
}

/// One mail, with retries on transient failures: whether it was accepted.
async fn deliver(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
    mail: Mail,
) -> bool {
    let kind = mail.kind.label();
    let Ok(to) = mail.to.parse::<Mailbox>() else {
        tracing::warn!(kind, "a mail's recipient is not an address: not sent");
        return false;
    };
    // 7bit as written: quoted-printable would break a long link across lines. The body is
    // ours: ASCII, CRLF lines far shorter than 1000 (checked here rather than trusted).
    let plain = mail.body.is_ascii()
        && !mail.body.contains('\0')
        && mail.body.split("\r\n").all(|line| line.len() < 990);
    if !plain {
        tracing::warn!(kind, "a mail's body is not plain 7-bit text: not sent");
        return false;
    }
    let body =
        Body::dangerous_pre_encoded(mail.body.into_bytes(), ContentTransferEncoding::SevenBit);
    let part = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .header(ContentTransferEncoding::SevenBit)
        .body(body);
    let message = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject)
        .singlepart(part);
    let Ok(message) = message else {
        tracing::warn!(kind, "a mail could not be built: not sent");
        return false;
    };
    let mut wait = Duration::from_secs(1);
    for attempt in 1..=ATTEMPTS {
        let sent = tokio::time::timeout(SEND_TIMEOUT, transport.send(message.clone())).await;
        let error = match sent {
            Ok(Ok(_)) => {
                tracing::info!(kind, attempt, "mail sent");
                return true;
            }
            Ok(Err(e)) => {
                // The server's answer, without the envelope or the message.
                let permanent = e.is_permanent();
                let status = e.status().map(|c| c.to_string()).unwrap_or_default();
                if permanent {
                    tracing::warn!(kind, attempt, status, "mail refused for good: not sent");
                    return false;
                }
                format!("{} {status}", error_kind(&e))
            }
            Err(_) => "timed out".to_string(),
        };
        tracing::warn!(kind, attempt, error, "mail not sent yet");
        if attempt < ATTEMPTS {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    tracing::warn!(kind, "mail not sent after every attempt");
    false
}

/// What kind of failure, in words that hold nothing of the message.
fn error_kind(e: &lettre::transport::smtp::Error) -> &'static str {
    if e.is_transient() {
        "transient"
    } else if e.is_timeout() {
        "timeout"
    } else if e.is_tls() {
        "tls"
    } else if e.is_client() || e.is_response() {
        "protocol"
    } else {
        "connection"
    }
}

/// The transport of `smtp_url`: smtps:// is TLS from the first byte; smtp:// upgrades with
/// STARTTLS when the server offers it, or must (`starttls = "required"`).
fn transport(settings: &MailSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let url = url::Url::parse(settings.url.expose()).map_err(|_| "smtp_url does not parse")?;
    let host = url.host_str().ok_or("smtp_url has no host")?.to_string();
    let implicit = url.scheme() == "smtps";
    let port = url.port().unwrap_or(if implicit { 465 } else { 587 });
    let mut tls = TlsParameters::builder(host.clone());
    for der in settings.ca_certs.iter().flatten() {
        let cert = lettre::transport::smtp::client::Certificate::from_der(der.clone())
            .map_err(|e| format!("ca_file: {e}"))?;
        tls = tls.add_root_certificate(cert);
    }
    let tls = tls.build_rustls().map_err(|e| format!("TLS: {e}"))?;
    let mode = match (implicit, settings.starttls_required) {
        (true, _) => Tls::Wrapper(tls),
        (false, true) => Tls::Required(tls),
        (false, false) => Tls::Opportunistic(tls),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .tls(mode)
        .timeout(Some(SEND_TIMEOUT));
    if !url.username().is_empty() {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let user = decode(url.username());
        let password = decode(url.password().unwrap_or_default());
        builder = builder.credentials(Credentials::new(user, password));
    }
    Ok(builder.build())
}
