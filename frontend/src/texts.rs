//! Everything the widget says, per language. The host page's `language` picks the set by
//! its primary subtag (`de-CH` → German); an unknown language falls back to English.
//! Templates name their values in braces (`{who}`) so translators can move them.

/// One language's texts.
#[derive(Debug, PartialEq, Eq)]
pub struct Texts {
    /// The primary language subtag, set as the widget's `lang` attribute.
    pub lang: &'static str,
    /// The writing direction, set as the widget's `dir` attribute: `ltr` or `rtl`.
    pub dir: &'static str,
    pub open_chat: &'static str,
    pub close_chat: &'static str,
    /// `{count}`: the launcher's unread badge, spoken.
    pub unread: &'static str,
    pub connecting: &'static str,
    pub connected: &'static str,
    pub reconnecting: &'static str,
    pub offline: &'static str,
    pub intro: &'static str,
    pub waiting: &'static str,
    pub your_name: &'static str,
    pub email: &'static str,
    pub subject: &'static str,
    pub optional: &'static str,
    pub start_chat: &'static str,
    pub starting: &'static str,
    pub name_missing: &'static str,
    pub name_too_long: &'static str,
    pub email_invalid: &'static str,
    pub conversation: &'static str,
    pub you: &'static str,
    pub sending: &'static str,
    pub retry: &'static str,
    /// `{who}`.
    pub is_typing: &'static str,
    pub chat_ended: &'static str,
    pub new_chat: &'static str,
    pub message: &'static str,
    pub placeholder: &'static str,
    pub end_chat: &'static str,
    pub send: &'static str,
    /// `{who}`.
    pub joined: &'static str,
    pub you_left: &'static str,
    /// `{who}`.
    pub left: &'static str,
    /// `{who}`, `{name}`.
    pub renamed: &'static str,
    /// `{who}`, `{name}`.
    pub file_sent: &'static str,
    /// `{who}`.
    pub file_deleted: &'static str,
    /// `{name}`.
    pub you_sent_file: &'static str,
    pub attach_file: &'static str,
    pub sending_file: &'static str,
    pub download: &'static str,
    pub save_transcript: &'static str,
    pub alerts_off: &'static str,
    pub alerts_on: &'static str,
    pub too_many_files: &'static str,
    /// `{name}`, `{max}`.
    pub file_too_big: &'static str,
    /// `{types}`.
    pub file_type_not_allowed: &'static str,
    /// `{reason}`.
    pub file_failed: &'static str,
    pub idle_alert: &'static str,
    pub idle_close: &'static str,
    /// `{reason}`.
    pub could_not_start: &'static str,
    /// `{reason}`.
    pub refused: &'static str,
    pub not_sent_offline: &'static str,
    pub no_live_updates: &'static str,
    pub unreachable: &'static str,
    /// `{status}`.
    pub http_error: &'static str,
}

/// Fills a template's `{key}` placeholders.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_owned(), |text, (key, value)| text.replace(&format!("{{{key}}}"), value))
}

/// The texts for a BCP 47 language tag.
pub fn for_language(tag: &str) -> &'static Texts {
    let primary = tag.split(['-', '_']).next().unwrap_or_default().to_ascii_lowercase();
    ALL.into_iter().find(|t| t.lang == primary).unwrap_or(&EN)
}

/// Every language the widget speaks.
pub const ALL: [&Texts; 7] = [&EN, &DE, &FR, &ES, &NL, &AR, &HE];

pub const EN: Texts = Texts {
    lang: "en",
    dir: "ltr",
    open_chat: "Chat with us",
    close_chat: "Close chat",
    unread: "{count} new",
    connecting: "Connecting…",
    connected: "Connected",
    reconnecting: "Reconnecting…",
    offline: "Offline",
    intro: "Ask us anything. You can close this page and come back later: your conversation stays here.",
    waiting: "We've got your message. An agent will reply here — you can close this page and come back.",
    your_name: "Your name",
    email: "E-mail",
    subject: "Subject",
    optional: "(optional)",
    start_chat: "Start chat",
    starting: "Starting…",
    name_missing: "Please tell us your name.",
    name_too_long: "Please use at most 64 characters for your name.",
    email_invalid: "Please enter a valid e-mail address, or leave it empty.",
    conversation: "Conversation",
    you: "You",
    sending: "Sending…",
    retry: "Retry",
    is_typing: "{who} is typing…",
    chat_ended: "This chat has ended.",
    new_chat: "Start a new chat",
    message: "Message",
    placeholder: "Type a message… (Enter sends, Shift+Enter for a new line)",
    end_chat: "End chat",
    send: "Send",
    joined: "{who} joined the chat",
    you_left: "You left the chat",
    left: "{who} left the chat",
    renamed: "{who} is now called {name}",
    file_sent: "{who} sent a file: {name}",
    file_deleted: "{who} deleted a file",
    you_sent_file: "You sent a file: {name}",
    attach_file: "Attach a file",
    sending_file: "Sending the file…",
    download: "Download",
    save_transcript: "Download transcript",
    alerts_off: "Alert me to replies",
    alerts_on: "Alerts on",
    too_many_files: "No more files can be sent in this chat.",
    file_too_big: "{name} is too large: at most {max} can be sent.",
    file_type_not_allowed: "This type of file cannot be sent. Allowed: {types}.",
    file_failed: "The file could not be sent: {reason}",
    idle_alert: "This chat will close soon due to inactivity",
    idle_close: "This chat was closed due to inactivity",
    could_not_start: "The chat could not start: {reason}",
    refused: "The chat service refused: {reason}",
    not_sent_offline: "Not sent: no connection.",
    no_live_updates: "Live updates are not available on this page.",
    unreachable: "Cannot reach the chat service. Check your connection.",
    http_error: "The chat service answered with error {status}.",
};

pub const DE: Texts = Texts {
    lang: "de",
    dir: "ltr",
    open_chat: "Chatten Sie mit uns",
    close_chat: "Chat schließen",
    unread: "{count} neu",
    connecting: "Verbinde…",
    connected: "Verbunden",
    reconnecting: "Verbinde erneut…",
    offline: "Offline",
    intro: "Fragen Sie uns alles. Sie können diese Seite schließen und später wiederkommen: Ihr Gespräch bleibt hier.",
    waiting: "Wir haben Ihre Nachricht erhalten. Ein Mitarbeiter antwortet hier – Sie können diese Seite schließen und später wiederkommen.",
    your_name: "Ihr Name",
    email: "E-Mail",
    subject: "Betreff",
    optional: "(optional)",
    start_chat: "Chat beginnen",
    starting: "Wird gestartet…",
    name_missing: "Bitte nennen Sie uns Ihren Namen.",
    name_too_long: "Bitte verwenden Sie höchstens 64 Zeichen für Ihren Namen.",
    email_invalid: "Bitte geben Sie eine gültige E-Mail-Adresse ein oder lassen Sie das Feld leer.",
    conversation: "Gespräch",
    you: "Sie",
    sending: "Wird gesendet…",
    retry: "Erneut senden",
    is_typing: "{who} schreibt…",
    chat_ended: "Dieser Chat ist beendet.",
    new_chat: "Neuen Chat beginnen",
    message: "Nachricht",
    placeholder: "Nachricht eingeben… (Enter sendet, Umschalt+Enter für eine neue Zeile)",
    end_chat: "Chat beenden",
    send: "Senden",
    joined: "{who} ist dem Chat beigetreten",
    you_left: "Sie haben den Chat verlassen",
    left: "{who} hat den Chat verlassen",
    renamed: "{who} heißt jetzt {name}",
    file_sent: "{who} hat eine Datei gesendet: {name}",
    file_deleted: "{who} hat eine Datei gelöscht",
    you_sent_file: "Sie haben eine Datei gesendet: {name}",
    attach_file: "Datei anhängen",
    sending_file: "Datei wird gesendet…",
    download: "Herunterladen",
    save_transcript: "Verlauf herunterladen",
    alerts_off: "Bei Antworten benachrichtigen",
    alerts_on: "Benachrichtigungen an",
    too_many_files: "In diesem Chat können keine weiteren Dateien gesendet werden.",
    file_too_big: "{name} ist zu groß: höchstens {max} können gesendet werden.",
    file_type_not_allowed: "Dieser Dateityp kann nicht gesendet werden. Erlaubt: {types}.",
    file_failed: "Die Datei konnte nicht gesendet werden: {reason}",
    idle_alert: "Dieser Chat wird wegen Inaktivität bald geschlossen",
    idle_close: "Dieser Chat wurde wegen Inaktivität geschlossen",
    could_not_start: "Der Chat konnte nicht beginnen: {reason}",
    refused: "Der Chat-Dienst hat abgelehnt: {reason}",
    not_sent_offline: "Nicht gesendet: keine Verbindung.",
    no_live_updates: "Live-Aktualisierungen sind auf dieser Seite nicht verfügbar.",
    unreachable: "Der Chat-Dienst ist nicht erreichbar. Prüfen Sie Ihre Verbindung.",
    http_error: "Der Chat-Dienst antwortete mit Fehler {status}.",
};

pub const FR: Texts = Texts {
    lang: "fr",
    dir: "ltr",
    open_chat: "Discutez avec nous",
    close_chat: "Fermer le chat",
    unread: "{count} nouveau(x)",
    connecting: "Connexion…",
    connected: "Connecté",
    reconnecting: "Reconnexion…",
    offline: "Hors ligne",
    intro: "Posez-nous vos questions. Vous pouvez fermer cette page et revenir plus tard : votre conversation reste ici.",
    waiting: "Nous avons bien reçu votre message. Un conseiller vous répondra ici — vous pouvez fermer cette page et revenir plus tard.",
    your_name: "Votre nom",
    email: "E-mail",
    subject: "Sujet",
    optional: "(facultatif)",
    start_chat: "Démarrer le chat",
    starting: "Démarrage…",
    name_missing: "Veuillez indiquer votre nom.",
    name_too_long: "Votre nom ne doit pas dépasser 64 caractères.",
    email_invalid: "Veuillez saisir une adresse e-mail valide, ou laisser le champ vide.",
    conversation: "Conversation",
    you: "Vous",
    sending: "Envoi…",
    retry: "Réessayer",
    is_typing: "{who} est en train d'écrire…",
    chat_ended: "Ce chat est terminé.",
    new_chat: "Démarrer un nouveau chat",
    message: "Message",
    placeholder: "Votre message… (Entrée envoie, Maj+Entrée pour une nouvelle ligne)",
    end_chat: "Terminer le chat",
    send: "Envoyer",
    joined: "{who} a rejoint le chat",
    you_left: "Vous avez quitté le chat",
    left: "{who} a quitté le chat",
    renamed: "{who} s'appelle désormais {name}",
    file_sent: "{who} a envoyé un fichier : {name}",
    file_deleted: "{who} a supprimé un fichier",
    you_sent_file: "Vous avez envoyé un fichier : {name}",
    attach_file: "Joindre un fichier",
    sending_file: "Envoi du fichier…",
    download: "Télécharger",
    save_transcript: "Télécharger la conversation",
    alerts_off: "M’avertir des réponses",
    alerts_on: "Alertes activées",
    too_many_files: "Aucun autre fichier ne peut être envoyé dans ce chat.",
    file_too_big: "{name} est trop volumineux : {max} au maximum.",
    file_type_not_allowed: "Ce type de fichier ne peut pas être envoyé. Autorisés : {types}.",
    file_failed: "Le fichier n'a pas pu être envoyé : {reason}",
    idle_alert: "Ce chat sera bientôt fermé pour inactivité",
    idle_close: "Ce chat a été fermé pour inactivité",
    could_not_start: "Le chat n'a pas pu démarrer : {reason}",
    refused: "Le service de chat a refusé : {reason}",
    not_sent_offline: "Non envoyé : pas de connexion.",
    no_live_updates: "Les mises à jour en direct ne sont pas disponibles sur cette page.",
    unreachable: "Impossible de joindre le service de chat. Vérifiez votre connexion.",
    http_error: "Le service de chat a répondu avec l'erreur {status}.",
};

pub const ES: Texts = Texts {
    lang: "es",
    dir: "ltr",
    open_chat: "Chatea con nosotros",
    close_chat: "Cerrar chat",
    unread: "{count} nuevo(s)",
    connecting: "Conectando…",
    connected: "Conectado",
    reconnecting: "Reconectando…",
    offline: "Sin conexión",
    intro: "Pregúntanos lo que quieras. Puedes cerrar esta página y volver más tarde: tu conversación se queda aquí.",
    waiting: "Hemos recibido tu mensaje. Un agente te responderá aquí; puedes cerrar esta página y volver más tarde.",
    your_name: "Tu nombre",
    email: "Correo electrónico",
    subject: "Asunto",
    optional: "(opcional)",
    start_chat: "Iniciar chat",
    starting: "Iniciando…",
    name_missing: "Por favor, dinos tu nombre.",
    name_too_long: "Usa como máximo 64 caracteres para tu nombre.",
    email_invalid: "Introduce un correo electrónico válido o deja el campo vacío.",
    conversation: "Conversación",
    you: "Tú",
    sending: "Enviando…",
    retry: "Reintentar",
    is_typing: "{who} está escribiendo…",
    chat_ended: "Este chat ha terminado.",
    new_chat: "Iniciar un chat nuevo",
    message: "Mensaje",
    placeholder: "Escribe un mensaje… (Intro envía, Mayús+Intro para una línea nueva)",
    end_chat: "Terminar chat",
    send: "Enviar",
    joined: "{who} se ha unido al chat",
    you_left: "Has salido del chat",
    left: "{who} ha salido del chat",
    renamed: "{who} ahora se llama {name}",
    file_sent: "{who} ha enviado un archivo: {name}",
    file_deleted: "{who} ha eliminado un archivo",
    you_sent_file: "Has enviado un archivo: {name}",
    attach_file: "Adjuntar un archivo",
    sending_file: "Enviando el archivo…",
    download: "Descargar",
    save_transcript: "Descargar la conversación",
    alerts_off: "Avisarme de las respuestas",
    alerts_on: "Avisos activados",
    too_many_files: "No se pueden enviar más archivos en este chat.",
    file_too_big: "{name} es demasiado grande: como máximo {max}.",
    file_type_not_allowed: "Este tipo de archivo no se puede enviar. Permitidos: {types}.",
    file_failed: "No se pudo enviar el archivo: {reason}",
    idle_alert: "Este chat se cerrará pronto por inactividad",
    idle_close: "Este chat se ha cerrado por inactividad",
    could_not_start: "No se pudo iniciar el chat: {reason}",
    refused: "El servicio de chat lo rechazó: {reason}",
    not_sent_offline: "No enviado: sin conexión.",
    no_live_updates: "Las actualizaciones en directo no están disponibles en esta página.",
    unreachable: "No se puede contactar con el servicio de chat. Comprueba tu conexión.",
    http_error: "El servicio de chat respondió con el error {status}.",
};

pub const NL: Texts = Texts {
    lang: "nl",
    dir: "ltr",
    open_chat: "Chat met ons",
    close_chat: "Chat sluiten",
    unread: "{count} nieuw",
    connecting: "Verbinden…",
    connected: "Verbonden",
    reconnecting: "Opnieuw verbinden…",
    offline: "Offline",
    intro: "Vraag ons wat je wilt. Je kunt deze pagina sluiten en later terugkomen: je gesprek blijft hier.",
    waiting: "We hebben je bericht ontvangen. Een medewerker antwoordt hier — je kunt deze pagina sluiten en later terugkomen.",
    your_name: "Je naam",
    email: "E-mail",
    subject: "Onderwerp",
    optional: "(optioneel)",
    start_chat: "Chat starten",
    starting: "Bezig met starten…",
    name_missing: "Vul je naam in.",
    name_too_long: "Gebruik maximaal 64 tekens voor je naam.",
    email_invalid: "Vul een geldig e-mailadres in, of laat het veld leeg.",
    conversation: "Gesprek",
    you: "Jij",
    sending: "Verzenden…",
    retry: "Opnieuw proberen",
    is_typing: "{who} is aan het typen…",
    chat_ended: "Deze chat is beëindigd.",
    new_chat: "Nieuwe chat starten",
    message: "Bericht",
    placeholder: "Typ een bericht… (Enter verstuurt, Shift+Enter voor een nieuwe regel)",
    end_chat: "Chat beëindigen",
    send: "Versturen",
    joined: "{who} neemt deel aan de chat",
    you_left: "Je hebt de chat verlaten",
    left: "{who} heeft de chat verlaten",
    renamed: "{who} heet nu {name}",
    file_sent: "{who} heeft een bestand gestuurd: {name}",
    file_deleted: "{who} heeft een bestand verwijderd",
    you_sent_file: "Je hebt een bestand gestuurd: {name}",
    attach_file: "Bestand bijvoegen",
    sending_file: "Bestand wordt verzonden…",
    download: "Downloaden",
    save_transcript: "Gesprek downloaden",
    alerts_off: "Waarschuw me bij antwoorden",
    alerts_on: "Meldingen aan",
    too_many_files: "In deze chat kunnen geen bestanden meer worden verzonden.",
    file_too_big: "{name} is te groot: maximaal {max}.",
    file_type_not_allowed: "Dit type bestand kan niet worden verzonden. Toegestaan: {types}.",
    file_failed: "Het bestand kon niet worden verzonden: {reason}",
    idle_alert: "Deze chat wordt binnenkort gesloten wegens inactiviteit",
    idle_close: "Deze chat is gesloten wegens inactiviteit",
    could_not_start: "De chat kon niet starten: {reason}",
    refused: "De chatdienst weigerde: {reason}",
    not_sent_offline: "Niet verzonden: geen verbinding.",
    no_live_updates: "Live-updates zijn op deze pagina niet beschikbaar.",
    unreachable: "De chatdienst is niet bereikbaar. Controleer je verbinding.",
    http_error: "De chatdienst antwoordde met fout {status}.",
};

pub const AR: Texts = Texts {
    lang: "ar",
    dir: "rtl",
    open_chat: "تحدث معنا",
    close_chat: "إغلاق المحادثة",
    unread: "{count} جديدة",
    connecting: "جارٍ الاتصال…",
    connected: "متصل",
    reconnecting: "جارٍ إعادة الاتصال…",
    offline: "غير متصل",
    intro: "اسألنا عن أي شيء. يمكنك إغلاق هذه الصفحة والعودة لاحقًا: تبقى محادثتك هنا.",
    waiting: "وصلتنا رسالتك. سيرد عليك أحد الموظفين هنا — يمكنك إغلاق هذه الصفحة والعودة لاحقًا.",
    your_name: "اسمك",
    email: "البريد الإلكتروني",
    subject: "الموضوع",
    optional: "(اختياري)",
    start_chat: "ابدأ المحادثة",
    starting: "جارٍ البدء…",
    name_missing: "يرجى إخبارنا باسمك.",
    name_too_long: "يرجى ألا يزيد اسمك على 64 حرفًا.",
    email_invalid: "يرجى إدخال بريد إلكتروني صحيح، أو ترك الحقل فارغًا.",
    conversation: "المحادثة",
    you: "أنت",
    sending: "جارٍ الإرسال…",
    retry: "إعادة المحاولة",
    is_typing: "{who} يكتب…",
    chat_ended: "انتهت هذه المحادثة.",
    new_chat: "ابدأ محادثة جديدة",
    message: "الرسالة",
    placeholder: "اكتب رسالة… (Enter للإرسال، Shift+Enter لسطر جديد)",
    end_chat: "إنهاء المحادثة",
    send: "إرسال",
    joined: "انضم {who} إلى المحادثة",
    you_left: "غادرت المحادثة",
    left: "غادر {who} المحادثة",
    renamed: "أصبح اسم {who} الآن {name}",
    file_sent: "أرسل {who} ملفًا: {name}",
    file_deleted: "حذف {who} ملفًا",
    you_sent_file: "أرسلت ملفًا: {name}",
    attach_file: "إرفاق ملف",
    sending_file: "جارٍ إرسال الملف…",
    download: "تنزيل",
    save_transcript: "تنزيل نص المحادثة",
    alerts_off: "نبّهني إلى الردود",
    alerts_on: "التنبيهات مفعّلة",
    too_many_files: "لا يمكن إرسال مزيد من الملفات في هذه المحادثة.",
    file_too_big: "{name} كبير جدًا: الحد الأقصى {max}.",
    file_type_not_allowed: "لا يمكن إرسال هذا النوع من الملفات. المسموح: {types}.",
    file_failed: "تعذّر إرسال الملف: {reason}",
    idle_alert: "ستُغلق هذه المحادثة قريبًا بسبب عدم النشاط",
    idle_close: "أُغلقت هذه المحادثة بسبب عدم النشاط",
    could_not_start: "تعذّر بدء المحادثة: {reason}",
    refused: "رفضت خدمة المحادثة: {reason}",
    not_sent_offline: "لم تُرسل: لا يوجد اتصال.",
    no_live_updates: "التحديثات المباشرة غير متاحة في هذه الصفحة.",
    unreachable: "تعذّر الوصول إلى خدمة المحادثة. تحقق من اتصالك.",
    http_error: "أجابت خدمة المحادثة بالخطأ {status}.",
};

pub const HE: Texts = Texts {
    lang: "he",
    dir: "rtl",
    open_chat: "דברו איתנו",
    close_chat: "סגירת הצ'אט",
    unread: "{count} חדשות",
    connecting: "מתחבר…",
    connected: "מחובר",
    reconnecting: "מתחבר מחדש…",
    offline: "לא מקוון",
    intro: "שאלו אותנו כל דבר. אפשר לסגור את הדף ולחזור מאוחר יותר: השיחה נשמרת כאן.",
    waiting: "קיבלנו את ההודעה שלך. נציג יענה כאן — אפשר לסגור את הדף ולחזור מאוחר יותר.",
    your_name: "השם שלך",
    email: "דואר אלקטרוני",
    subject: "נושא",
    optional: "(לא חובה)",
    start_chat: "התחלת צ'אט",
    starting: "מתחיל…",
    name_missing: "נא לכתוב את שמך.",
    name_too_long: "נא להשתמש בעד 64 תווים לשם.",
    email_invalid: "נא להזין כתובת דואר אלקטרוני תקינה, או להשאיר ריק.",
    conversation: "שיחה",
    you: "את/ה",
    sending: "שולח…",
    retry: "ניסיון חוזר",
    is_typing: "{who} מקליד/ה…",
    chat_ended: "הצ'אט הסתיים.",
    new_chat: "התחלת צ'אט חדש",
    message: "הודעה",
    placeholder: "כתבו הודעה… (Enter לשליחה, Shift+Enter לשורה חדשה)",
    end_chat: "סיום הצ'אט",
    send: "שליחה",
    joined: "{who} הצטרף/ה לצ'אט",
    you_left: "יצאת מהצ'אט",
    left: "{who} יצא/ה מהצ'אט",
    renamed: "{who} נקרא/ת עכשיו {name}",
    file_sent: "{who} שלח/ה קובץ: {name}",
    file_deleted: "{who} מחק/ה קובץ",
    you_sent_file: "שלחת קובץ: {name}",
    attach_file: "צירוף קובץ",
    sending_file: "שולח את הקובץ…",
    download: "הורדה",
    save_transcript: "הורדת תמליל השיחה",
    alerts_off: "התראה על תשובות",
    alerts_on: "ההתראות פעילות",
    too_many_files: "אי אפשר לשלוח עוד קבצים בצ'אט הזה.",
    file_too_big: "{name} גדול מדי: אפשר לשלוח עד {max}.",
    file_type_not_allowed: "אי אפשר לשלוח קובץ מהסוג הזה. מותר: {types}.",
    file_failed: "לא ניתן היה לשלוח את הקובץ: {reason}",
    idle_alert: "הצ'אט ייסגר בקרוב בגלל חוסר פעילות",
    idle_close: "הצ'אט נסגר בגלל חוסר פעילות",
    could_not_start: "לא ניתן היה להתחיל את הצ'אט: {reason}",
    refused: "שירות הצ'אט סירב: {reason}",
    not_sent_offline: "לא נשלח: אין חיבור.",
    no_live_updates: "עדכונים חיים אינם זמינים בדף הזה.",
    unreachable: "אין גישה לשירות הצ'אט. בדקו את החיבור.",
    http_error: "שירות הצ'אט השיב בשגיאה {status}.",
};

#[cfg(test)]
mod tests {
    use super::*;

    fn placeholders(template: &str) -> Vec<&str> {
        let mut found: Vec<&str> = template
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .collect();
        found.sort_unstable();
        found
    }

    /// Every field of a `Texts`, by way of its Debug output, so a new field is covered
    /// without touching this test.
    fn fields(texts: &Texts) -> Vec<(String, String)> {
        let debug = format!("{texts:#?}");
        debug
            .lines()
            .filter_map(|line| {
                let (name, value) = line.trim().split_once(": ")?;
                let value = rust_escapes_as_chars(value.trim_end_matches(','));
                let value: String = serde_json::from_str(&value).ok()?;
                Some((name.to_owned(), value))
            })
            .collect()
    }

    /// Debug writes combining marks (Arabic vowel signs) as `\u{64b}`, which JSON does not
    /// read: they become the characters again.
    fn rust_escapes_as_chars(debug: &str) -> String {
        let mut out = String::new();
        let mut rest = debug;
        while let Some(at) = rest.find("\\u{") {
            out.push_str(&rest[..at]);
            let (hex, after) = rest[at + 3..].split_once('}').expect("closed escape");
            out.push(u32::from_str_radix(hex, 16).ok().and_then(char::from_u32).expect("char"));
            rest = after;
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn every_language_fills_every_text_with_the_same_placeholders() {
        let english = fields(&EN);
        assert!(english.len() > 40, "{english:?}");
        for texts in ALL {
            let translated = fields(texts);
            assert_eq!(translated.len(), english.len(), "{}", texts.lang);
            for ((name, en), (other_name, text)) in english.iter().zip(&translated) {
                assert_eq!(name, other_name);
                assert!(!text.trim().is_empty(), "{}.{name} is empty", texts.lang);
                assert_eq!(placeholders(en), placeholders(text), "{}.{name}", texts.lang);
            }
        }
    }

    #[test]
    fn a_language_tag_picks_its_primary_subtag_and_unknown_ones_fall_back_to_english() {
        assert_eq!(for_language("de-CH").lang, "de");
        assert_eq!(for_language("FR").lang, "fr");
        assert_eq!(for_language("es_MX").lang, "es");
        assert_eq!(for_language("nl").lang, "nl");
        assert_eq!(for_language("pt-BR").lang, "en");
        assert_eq!((for_language("ar-EG").lang, for_language("ar-EG").dir), ("ar", "rtl"));
        assert_eq!((for_language("he-IL").lang, for_language("he").dir), ("he", "rtl"));
        assert_eq!(for_language("en-GB").dir, "ltr");
        assert_eq!(for_language("").lang, "en");
    }

    #[test]
    fn templates_are_filled_by_name() {
        assert_eq!(fill(EN.renamed, &[("who", "Ann"), ("name", "Anna")]), "Ann is now called Anna");
        assert_eq!(fill(FR.is_typing, &[("who", "Léa")]), "Léa est en train d'écrire…");
    }
}
